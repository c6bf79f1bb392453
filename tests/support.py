"""Helpers shared by the tests: the same test code drives mcp 1.x and 2.x."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import importlib
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
from mcp_webrtc.signaling import JSONObject

MCP2 = hasattr(mcp, "Client")

#: The SDK's error for a JSON-RPC error answer: MCPError (2.x) or McpError (1.x).
MCPError: type[Exception] = (
    mcp.MCPError if MCP2 else importlib.import_module("mcp.shared.exceptions").McpError
)


def options(**overrides: Any) -> WebRTCOptions:
    """Test defaults: loopback host candidates only, short timeouts."""
    base: dict[str, Any] = {
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


async def wait(seconds: float) -> str:
    """Sleep, then answer: a call that stays pending."""
    await anyio.sleep(seconds)
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
    return [*trickled, {"type": signal["type"], "sdp": "\r\n".join(kept)}, end]


@asynccontextmanager
async def rendezvous(host_token: str, **config: Any) -> AsyncIterator[Any]:
    """A rendezvous on 127.0.0.1 (free port) that accepts ``host_token``."""
    from mcp_webrtc.rendezvous import RendezvousConfig, RendezvousServer

    settings = RendezvousConfig(port=0, host_tokens=(host_token,), **config)
    async with RendezvousServer(settings) as server:
        yield server


@asynccontextmanager
async def serving(
    url: str,
    host_token: str,
    client_token: str,
    target: Any = None,
    room: str = "lab",
    **kwargs: Any,
) -> AsyncIterator[None]:
    """``serve`` (a test server by default) registered in ``room`` for the block's duration."""
    from mcp_webrtc.serve import serve

    async with anyio.create_task_group() as tg:
        await tg.start(
            lambda task_status: serve(
                target if target is not None else make_server("served"),
                url,
                room=room,
                token=host_token,
                client_token=client_token,
                options=options(),
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
    """Arguments of `mcp-webrtc serve` registering room "lab" on loopback candidates."""
    return [
        "serve", url, "--room", "lab", "--token", host_token, "--client-token", client_token,
        "--host-candidates", "loopback", *extra,
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
