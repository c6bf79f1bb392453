"""Helpers shared by the tests: the same test code drives mcp 1.x and 2.x."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import importlib
import os
import random
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import anyio
import mcp

from mcp_webrtc import (
    LOOPBACK_ONLY,
    MemorySignaling,
    WebRTCClientTransport,
    WebRTCOptions,
    WebRTCServerTransport,
    run_server,
)
from mcp_webrtc.engines import libwebrtc_available
from mcp_webrtc.signaling import JSONObject

MCP2 = hasattr(mcp, "Client")

#: The SDK's error for a JSON-RPC error answer: MCPError (2.x) or McpError (1.x).
MCPError: type[Exception] = (
    mcp.MCPError if MCP2 else importlib.import_module("mcp.shared.exceptions").McpError
)


# Tests ask for loopback candidates everywhere; libwebrtc allows them process-wide, and only
# before the first connection, so for the whole test process (and its children) at once,
# before wrtc is imported.
os.environ["WRTC_ALLOW_LOOPBACK"] = "1"
#: The engines installed here; the tests of WebRTC modules run once on each.
ENGINES: list[str] = ["aiortc", *(["libwebrtc"] if libwebrtc_available() else [])]
#: The engine of the running test (set by the ``engine`` fixture in conftest.py, and
#: passed to the processes tests start through MCP_WEBRTC_ENGINE).
ENGINE = os.environ.get("MCP_WEBRTC_ENGINE", ENGINES[0])


def options(**overrides: Any) -> WebRTCOptions:
    """Test defaults: the test's engine, loopback host candidates only, short timeouts."""
    base: dict[str, Any] = {
        "engine": ENGINE,
        "host_candidates": LOOPBACK_ONLY,
        "connect_timeout": 10.0,
        "dead_peer_timeout": 3.0,
    }
    base.update(overrides)
    return WebRTCOptions(**base)


def greet(name: str) -> str:
    """Greet someone."""
    return f"Hello, {name}!"


def echo(data: str) -> str:
    """Return the argument unchanged."""
    return data


def digest(data: str) -> str:
    """SHA-256 of the argument's UTF-8 bytes, and its length."""
    return f"{hashlib.sha256(data.encode()).hexdigest()}:{len(data)}"


#: Calls of ``wait`` cancelled in this process, by their ``seconds``.
CANCELLED_WAITS: list[float] = []


async def wait(seconds: float) -> str:
    """Sleep, then answer: a call that stays pending (recorded in :data:`CANCELLED_WAITS`
    when cancelled)."""
    try:
        await anyio.sleep(seconds)
    except anyio.get_cancelled_exc_class():
        CANCELLED_WAITS.append(seconds)
        raise
    return "done"


def blob(size: int, seed: int = 0) -> str:
    """A deterministic string of ``size`` characters."""
    return payload(size, seed)


def make_server(name: str = "test") -> Any:
    """An MCPServer (2.x) or FastMCP (1.x) with the tools the tests use."""
    module, cls = (
        ("mcp.server.mcpserver", "MCPServer") if MCP2 else ("mcp.server.fastmcp", "FastMCP")
    )
    server = getattr(importlib.import_module(module), cls)(name)
    server.add_tool(greet)
    for tool in (echo, digest, wait, blob):
        server.add_tool(tool, structured_output=False)
    return server


def payload(size: int, seed: int = 0) -> str:
    """``size`` characters of base64 from random bytes: no JSON escaping (so sizes on the
    wire are exact) and, like real binary blobs, barely compressible."""
    raw = random.Random(seed).randbytes(size * 3 // 4 + 3)
    return base64.b64encode(raw).decode()[:size]


def text_of(result: Any) -> str:
    content = result.content[0]
    assert content.type == "text", content
    text: str = content.text
    return text


@asynccontextmanager
async def mcp_client(transport: AbstractAsyncContextManager[Any]) -> AsyncIterator[Any]:
    """An initialized client over ``transport``: mcp.Client (2.x) or ClientSession (1.x)."""
    if MCP2:
        async with mcp.Client(transport) as client:
            yield client
    else:  # pragma: no cover
        async with transport as (read, write), mcp.ClientSession(read, write) as session:
            await session.initialize()
            yield session


class TapSignaling:
    """Wraps a Signaling; ``rewrite`` may replace each outgoing signal by a list of signals."""

    def __init__(self, inner: Any, rewrite: Any) -> None:
        self.inner = inner
        self.rewrite = rewrite

    async def connect(self) -> None:
        await self.inner.connect()

    async def send(self, signal: JSONObject) -> None:
        for item in self.rewrite(signal):
            await self.inner.send(item)

    async def receive(self) -> JSONObject | None:
        result: JSONObject | None = await self.inner.receive()
        return result

    async def close(self) -> None:
        await self.inner.close()


FAKE_SDP = "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"


class FakeEngine:
    """An engine without a network, to watch the peer's own rules: its channel opens as the
    answer arrives, it records the frames handed to it, and ``buffered`` is its buffer."""

    name = "fake"

    def __init__(self, options: WebRTCOptions, servers: Any, events: Any, keep: Any) -> None:
        self.events = events
        self.frames: list[str | bytes] = []
        self.buffered = 0
        self.open = False

    async def offer(self, label: str) -> str:
        return FAKE_SDP

    async def answer(self, offer: str) -> str:
        return FAKE_SDP

    async def accept(self, answer: str) -> None:
        self.open = True
        self.events.channel_open()

    async def add_candidate(self, candidate: Any) -> None:
        return None

    def send(self, frame: str | bytes) -> None:
        if not self.open:
            raise ConnectionError("the data channel is closed")
        self.frames.append(frame)

    @property
    def buffered_amount(self) -> int:
        return self.buffered

    @property
    def label(self) -> str | None:
        return "fake"

    def snapshot(self) -> Any:
        from mcp_webrtc._core.connection import ConnectSnapshot

        return ConnectSnapshot(True, True, 1, 0, True, "connected", "connected")

    async def probe(self) -> Any:
        return None, await self.path()

    async def path(self) -> Any:
        from mcp_webrtc.engines import PathInfo

        return PathInfo(None, None, None)

    def hold_receiving(self, wait: Any) -> bool:
        return False

    def drain(self) -> None:
        self.buffered = 0
        self.events.drained()

    def close_channel(self) -> None:
        self.open = False
        self.events.channel_closed()

    async def close(self) -> None:
        self.open = False


@asynccontextmanager
async def fake_peer(**overrides: Any) -> AsyncIterator[tuple[Any, FakeEngine]]:
    """A connected initiating peer over a :class:`FakeEngine`; the other side of the
    signaling answers as a peer that reassembles chunks."""
    from mcp_webrtc._core.sdp import add_capability
    from mcp_webrtc.peer import DataChannelPeer

    a, b = MemorySignaling.create_pair()
    made: list[FakeEngine] = []

    def factory(*args: Any) -> FakeEngine:
        made.append(FakeEngine(*args))
        return made[-1]

    async def answerer() -> None:
        await b.receive()  # the offer
        await b.send({"type": "answer", "sdp": add_capability(FAKE_SDP, 10**9, deflate=False)})

    async with anyio.create_task_group() as tg:
        tg.start_soon(answerer)
        peer = DataChannelPeer(a, options(**overrides), initiator=True, engine=factory)
        async with peer:
            yield peer, made[0]
        tg.cancel_scope.cancel()


Rewrite = Callable[[JSONObject], list[Any]]


@asynccontextmanager
async def memory_pair(
    server: Any = None,
    *,
    server_options: WebRTCOptions | None = None,
    client_options: WebRTCOptions | None = None,
    server_rewrite: Rewrite | None = None,
    client_rewrite: Rewrite | None = None,
) -> AsyncIterator[tuple[Any, WebRTCClientTransport]]:
    """A server (``make_server()`` by default) and an initialized MCP client connected over
    WebRTC through MemorySignaling; yields ``(client, client_transport)``. A rewrite wraps
    that side's signaling in :class:`TapSignaling`. Leaving waits until the server's session
    has ended by itself (it does when the client leaves)."""
    a, b = MemorySignaling.create_pair()
    server_signaling = a if server_rewrite is None else TapSignaling(a, server_rewrite)
    client_signaling = b if client_rewrite is None else TapSignaling(b, client_rewrite)
    async with anyio.create_task_group() as tg:
        tg.start_soon(
            run_server,
            server if server is not None else make_server(),
            WebRTCServerTransport(server_signaling, server_options or options()),
        )
        transport = WebRTCClientTransport(client_signaling, client_options or options())
        async with mcp_client(transport) as client:
            yield client, transport


def split_candidates(signal: JSONObject) -> list[Any]:
    """Move a description's candidates into simple-peer candidate signals sent *before* it."""
    if signal.get("type") not in ("offer", "answer"):
        return [signal]
    lines = signal["sdp"].split("\r\n")
    candidates = [line[2:] for line in lines if line.startswith("a=candidate:")]
    kept = [line for line in lines if not line.startswith(("a=candidate:", "a=end-of-cand"))]
    trickled = [
        {"type": "candidate", "candidate": {"candidate": c, "sdpMid": "0", "sdpMLineIndex": 0}}
        for c in candidates
    ]
    end = {"type": "candidate", "candidate": {"candidate": "", "sdpMid": "0", "sdpMLineIndex": 0}}
    ended = "a=end-of-candidates" in signal["sdp"]  # else the engine trickles on, then ends
    return [
        *trickled,
        {"type": signal["type"], "sdp": "\r\n".join(kept)},
        *([end] if ended else []),
    ]


@asynccontextmanager
async def rendezvous(host_token: str, **config: Any) -> AsyncIterator[Any]:
    """A rendezvous on 127.0.0.1 (free port) that accepts ``host_token``."""
    from mcp_webrtc.rendezvous import RendezvousConfig, RendezvousServer

    settings = RendezvousConfig(port=0, host_tokens=(host_token,), **config)
    async with RendezvousServer(settings) as server:
        yield server


@asynccontextmanager
async def serving(
    url: str | list[str],
    host_token: str,
    client_token: str,
    target: Any = None,
    room: str = "lab",
    **kwargs: Any,
) -> AsyncIterator[None]:
    """``serve`` (a test server by default) registered in ``room`` for the block's duration
    (``options=`` as serve takes them; the test defaults otherwise)."""
    from mcp_webrtc.serve import serve

    served_options = kwargs.pop("options", None) or options()
    async with anyio.create_task_group() as tg:
        await tg.start(
            lambda task_status: serve(
                target if target is not None else make_server("served"),
                url,
                room=room,
                token=host_token,
                client_token=client_token,
                options=served_options,
                task_status=task_status,
                **kwargs,
            )
        )
        yield
        tg.cancel_scope.cancel()


async def hold_client(transport: Any, *, task_status: Any = anyio.TASK_STATUS_IGNORED) -> None:
    """Open an MCP client on ``transport`` and keep it open (``tg.start`` returns once it
    is initialized) until cancelled or the session ends."""
    async with mcp_client(transport) as client:
        await client.list_tools()
        task_status.started()
        with contextlib.suppress(Exception):
            await transport.peer.wait_gone()


async def wait_registered(server: Any, rooms: int = 1) -> None:
    """Wait until the rendezvous ``server`` holds ``rooms`` rooms (its public counts)."""
    with anyio.fail_after(30):
        while (await server.backend.counts())[0] < rooms:  # noqa: ASYNC110 - observed state
            await anyio.sleep(0.05)


def serve_args(url: str, host_token: str, client_token: str, *extra: str) -> list[str]:
    """Arguments of `mcp-webrtc serve` registering room "lab" on loopback candidates, on
    the test's engine."""
    return [
        "serve", url, "--room", "lab", "--token", host_token, "--client-token", client_token,
        "--host-candidates", "loopback", "--engine", ENGINE, *extra,
    ]  # fmt: skip


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def wait_until(predicate: Any, limit: float = 10.0) -> None:
    """Wait (at most ``limit`` seconds) for state the code under test reaches by itself.

    For counters and flags that have no event to wait on; never used to let time pass.
    """
    with anyio.fail_after(limit):
        while not predicate():  # noqa: ASYNC110 - polling observed state, bounded
            await anyio.sleep(0.02)
