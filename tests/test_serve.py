"""Many peers through the rendezvous, stdio bridges, the command line and its demo."""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest
from anyio.abc import TaskStatus
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

from mcp_webrtc import (
    ConnectError,
    SignalingError,
    WebRTCClientTransport,
    WebRTCServerTransport,
    run_server,
)
from mcp_webrtc.peer import PEER_CLOSED
from mcp_webrtc.rendezvous import RendezvousConfig, RendezvousServer
from mcp_webrtc.serve import connect, serve
from mcp_webrtc.websocket_signaling import RendezvousHost, RendezvousRefused

from . import support
from .support import make_server, mcp_client, options, text_of

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parent.parent
EVERYTHING = ROOT / "tests/node/node_modules/@modelcontextprotocol/server-everything/dist/index.js"
HOST_TOKEN, CLIENT_TOKEN = "h-token", "c-token"


def rendezvous() -> Any:
    return support.rendezvous(HOST_TOKEN)


def serving(url: str, target: Any = None, **kwargs: Any) -> Any:
    return support.serving(url, HOST_TOKEN, CLIENT_TOKEN, target, **kwargs)


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "mcp_webrtc", *args]


@asynccontextmanager
async def cli_process(*args: str) -> AsyncIterator[Any]:
    process = await anyio.open_process(cli(*args), cwd=ROOT, stdout=None, stderr=None)
    try:
        yield process
    finally:
        process.terminate()
        with anyio.fail_after(15):
            await process.wait()


def serve_cli(server: RendezvousServer, *target: str) -> Any:
    """`mcp-webrtc serve` in its own process, registered in room "lab"."""
    return cli_process(*support.serve_args(server.url, HOST_TOKEN, CLIENT_TOKEN, *target))


async def wait_registered(server: RendezvousServer) -> None:
    with anyio.fail_after(30):
        while (await server.backend.counts())[0] == 0:  # noqa: ASYNC110 - observing state
            await anyio.sleep(0.05)


async def test_fifty_concurrent_clients_each_get_their_own_session() -> None:
    async with (
        rendezvous() as server,
        serve_cli(
            server,
            "--app",
            "tests.app:SERVER",
        ),
    ):
        await wait_registered(server)
        answers: dict[int, str] = {}

        async def one(i: int) -> None:
            transport = connect(server.url, room="lab", token=CLIENT_TOKEN, options=options())
            async with mcp_client(transport) as client:
                tools = await client.list_tools()
                assert "greet" in {t.name for t in tools.tools}
                answers[i] = text_of(await client.call_tool("greet", {"name": f"peer{i}"}))

        with anyio.fail_after(120):
            async with anyio.create_task_group() as tg:
                for i in range(50):
                    tg.start_soon(one, i)
    assert answers == {i: f"Hello, peer{i}!" for i in range(50)}


async def test_wrong_token_and_unknown_room_fail_clearly_and_others_keep_working() -> None:
    async with rendezvous() as server, serving(server.url):
        good = connect(server.url, room="lab", token=CLIENT_TOKEN, options=options())
        async with mcp_client(good) as client:
            for room, token in (("lab", "wrong"), ("elsewhere", CLIENT_TOKEN)):
                with pytest.raises(RendezvousRefused) as refused:
                    async with connect(server.url, room=room, token=token, options=options()):
                        pass
                assert refused.value.code == "unauthorized"
            assert text_of(await client.call_tool("greet", {"name": "ok"})) == "Hello, ok!"


async def test_wrong_host_token_is_refused() -> None:
    async with rendezvous() as server:
        with pytest.raises(RendezvousRefused, match="wrong host token"):
            await serve(make_server(), server.url, room="lab", token="bad", client_token="c")


async def test_host_leaving_fails_waiting_clients_fast() -> None:
    failure: list[BaseException] = []

    async def hosting(*, task_status: TaskStatus[None]) -> None:
        async with RendezvousHost(server.url, "lab", HOST_TOKEN, CLIENT_TOKEN) as host:
            task_status.started()
            async for _session in host.sessions():
                break  # a client joined and waits for our offer: leave instead

    async def waiting_client() -> None:
        transport = connect(
            server.url, room="lab", token=CLIENT_TOKEN, options=options(connect_timeout=30)
        )
        try:
            async with transport:
                pass
        except Exception as exc:
            failure.append(exc)

    async with rendezvous() as server:
        with anyio.fail_after(10):  # well inside the client's 30 s connect timeout
            async with anyio.create_task_group() as tg:
                await tg.start(hosting)
                tg.start_soon(waiting_client)
    assert "the host left the room" in str(failure[0])


async def test_sessions_survive_the_rendezvous_going_away() -> None:
    server = RendezvousServer(RendezvousConfig(port=0, host_tokens=(HOST_TOKEN,)))
    await server.start()
    async with serving(server.url):
        transport = connect(server.url, room="lab", token=CLIENT_TOKEN, options=options())
        async with mcp_client(transport) as client:
            assert text_of(await client.call_tool("greet", {"name": "a"})) == "Hello, a!"
            await server.close()  # rendezvous killed
            for i in range(5):
                assert text_of(await client.call_tool("greet", {"name": f"{i}"})) == f"Hello, {i}!"
            assert not transport.peer.gone


async def test_stopping_serve_closes_every_session() -> None:
    async with rendezvous() as server:
        transports = [
            connect(server.url, room="lab", token=CLIENT_TOKEN, options=options()) for _ in range(3)
        ]
        async with anyio.create_task_group() as outer:
            async with serving(server.url):
                clients = [await stack_enter(outer, t) for t in transports]
                for client in clients:
                    await client.list_tools()
            # serve was cancelled: every client learns at once, none waits for a timeout
            await support.wait_until(lambda: all(t.peer.gone for t in transports), limit=10)
            # bye over signaling or the channel's close, whichever arrives first
            reasons = {t.peer.gone_reason for t in transports}
            assert reasons <= {"peer said bye", PEER_CLOSED}, reasons
            outer.cancel_scope.cancel()


async def stack_enter(tg: Any, transport: Any) -> Any:
    """Open an MCP client on ``transport`` in a task of ``tg``; return it once ready."""
    ready: list[Any] = []
    opened = anyio.Event()

    async def hold() -> None:
        async with mcp_client(transport) as client:
            ready.append(client)
            opened.set()
            await anyio.sleep_forever()

    tg.start_soon(hold)
    await opened.wait()
    return ready[0]


async def test_server_full_refuses_extra_sessions_clearly() -> None:
    async with rendezvous() as server, serving(server.url, max_sessions=1):
        first = connect(server.url, room="lab", token=CLIENT_TOKEN, options=options())
        async with mcp_client(first) as client:
            await client.list_tools()
            with pytest.raises(ConnectError, match="server full"):
                async with connect(server.url, room="lab", token=CLIENT_TOKEN, options=options()):
                    pass


def bridged_stdio_session(url: str) -> Any:
    """The SDK's stdio client, running `mcp-webrtc connect` as its 'server'."""
    params = StdioServerParameters(
        command=sys.executable,
        args=[
            "-m",
            "mcp_webrtc",
            "connect",
            url,
            "--room",
            "lab",
            "--token",
            CLIENT_TOKEN,
            "--host-candidates",
            "loopback",
        ],
        cwd=str(ROOT),
        env=dict(os.environ),
    )
    return stdio_client(params)


@pytest.mark.skipif(not EVERYTHING.exists(), reason="run `make test` to install the npm peers")
async def test_serve_npm_server_everything_through_connect() -> None:
    async with (
        rendezvous() as server,
        serve_cli(
            server,
            "--",
            "node",
            str(EVERYTHING),
            "stdio",
        ),
    ):
        await wait_registered(server)
        with anyio.fail_after(60):
            async with (
                bridged_stdio_session(server.url) as (read, write),
                ClientSession(read, write) as session,
            ):
                await session.initialize()
                tools = {t.name for t in (await session.list_tools()).tools}
                assert {"echo", "get-sum", "get-tiny-image"} <= tools
                echoed = await session.call_tool("echo", {"message": "over WebRTC"})
                assert "over WebRTC" in text_of(echoed)
                summed = await session.call_tool("get-sum", {"a": 2, "b": 40})
                assert "42" in text_of(summed)
                image = await session.call_tool("get-tiny-image", {})
                assert any(c.type == "image" for c in image.content)
                resources = (await session.list_resources()).resources
                read_back = await session.read_resource(resources[0].uri)
                assert read_back.contents
                prompt = await session.get_prompt("args-prompt", {"city": "Paris"})
                assert "Paris" in str(prompt.messages[0].content)


async def test_serve_python_stdio_server_through_connect() -> None:
    async with (
        rendezvous() as server,
        serve_cli(
            server,
            "--",
            sys.executable,
            "-m",
            "tests.stdio_server",
        ),
    ):
        await wait_registered(server)
        with anyio.fail_after(60):
            async with (
                bridged_stdio_session(server.url) as (read, write),
                ClientSession(read, write) as session,
            ):
                await session.initialize()
                result = await session.call_tool("greet", {"name": "stdio"})
                assert text_of(result) == "Hello, stdio!"
                big = await session.call_tool("blob", {"size": 3_000_000, "seed": 3})
                assert len(text_of(big)) == 3_000_000
                assert stdio_servers(), "one server process runs for this peer"
        # the peer left: serve ends that peer's server process
        await support.wait_until(lambda: not stdio_servers(), limit=20)


def stdio_servers() -> list[int]:
    """PIDs of running `python -m tests.stdio_server` processes."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if cmdline.split(b"\0")[1:3] == [b"-m", b"tests.stdio_server"]:
                found.append(int(entry.name))  # not `serve ... -- python -m tests...`
    return found


def test_demo_command_exits_zero() -> None:
    done = subprocess.run(cli("demo"), cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    for step in (
        "rendezvous listening",
        "peer connected: host",
        "initialized",
        "tools listed",
        "call greet",
        "done",
    ):
        assert step in done.stdout, done.stdout


def test_help_lists_commands_and_examples() -> None:
    done = subprocess.run(cli("--help"), capture_output=True, text=True, timeout=60)
    assert done.returncode == 0
    for word in ("signal", "serve", "connect", "demo", "MCP_WEBRTC_STUN", "examples"):
        assert word in done.stdout
    assert "visible to other local users" in " ".join(done.stdout.split())
    for command in ("serve", "connect"):
        helped = subprocess.run(cli(command, "--help"), capture_output=True, text=True, timeout=60)
        assert "--token-file" in helped.stdout


async def test_rendezvous_over_tls_end_to_end(tmp_path: Path) -> None:
    """wss:// with the operator's certificate; peers trust its CA (here via an SSLContext)."""
    import ssl

    from mcp_webrtc.websocket_signaling import WebSocketSignaling

    from .lab import make_certificates

    make_certificates(tmp_path, "127.0.0.1")
    config = RendezvousConfig(
        port=0,
        host_tokens=(HOST_TOKEN,),
        tls_cert=str(tmp_path / "turn.pem"),
        tls_key=str(tmp_path / "turn.key"),
    )
    trust = ssl.create_default_context(cafile=str(tmp_path / "ca.pem"))
    async with RendezvousServer(config) as server:
        assert server.url.startswith("wss://")
        host = RendezvousHost(server.url, "lab", HOST_TOKEN, CLIENT_TOKEN, ssl_context=trust)
        async with host, anyio.create_task_group() as tg:

            async def serve_first_session() -> None:
                async for session in host.sessions():
                    await run_server(make_server(), WebRTCServerTransport(session, options()))
                    return

            tg.start_soon(serve_first_session)
            signaling = WebSocketSignaling(server.url, "lab", CLIENT_TOKEN, ssl_context=trust)
            transport = WebRTCClientTransport(signaling, options())
            async with mcp_client(transport) as client:
                assert text_of(await client.call_tool("greet", {"name": "tls"})) == "Hello, tls!"
        # a peer that does not trust the certificate gets a clear error
        with pytest.raises(SignalingError, match="cannot reach the rendezvous"):
            await WebSocketSignaling(server.url, "lab", CLIENT_TOKEN).connect()


async def test_bridge_answers_a_request_too_large_to_forward() -> None:
    """Regression: one oversize request ended the `connect` proxy (and serve sessions)."""
    import json
    import math

    from mcp_webrtc import MessageTooLargeError
    from mcp_webrtc._compat import dump_message, parse_message
    from mcp_webrtc.bridges import pump

    class Narrow:
        """A write stream that takes only small messages, like a plain peer."""

        def __init__(self) -> None:
            self.sent: list[str] = []

        async def send(self, item: Any) -> None:
            text = dump_message(item)
            if len(text) > 100:
                raise MessageTooLargeError(len(text), 100, "the peer's")
            self.sent.append(text)

        async def __aenter__(self) -> Any:
            return self

        async def __aexit__(self, *exc: object) -> None:
            return None

    source_in, source = anyio.create_memory_object_stream[Any](math.inf)
    back, answers = anyio.create_memory_object_stream[Any](math.inf)
    big = {"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"x": "y" * 500}}
    loud = {"jsonrpc": "2.0", "method": "notifications/message", "params": {"x": "y" * 500}}
    small = {"jsonrpc": "2.0", "id": 8, "method": "ping"}
    for message in (big, loud, small):
        source_in.send_nowait(parse_message(json.dumps(message)))
    source_in.close()
    sink = Narrow()
    with anyio.fail_after(5):
        await pump(source, sink, back)
    answer = json.loads(dump_message(answers.receive_nowait()))
    assert answer["id"] == 7
    assert answer["error"]["code"] == -32050
    assert [json.loads(text)["id"] for text in sink.sent] == [8]  # the bridge went on


def socket_inodes() -> set[str]:
    """Inodes of the sockets this process holds (from /proc: no private state is read)."""
    found = set()
    for fd in Path("/proc/self/fd").iterdir():
        with contextlib.suppress(OSError):  # closed meanwhile
            link = os.readlink(fd)
            if link.startswith("socket:"):
                found.add(link[len("socket:[") : -1])
    return found


def open_sockets() -> int:
    """How many sockets this process holds."""
    return len(socket_inodes())


def describe_sockets(inodes: set[str]) -> list[str]:
    """``proto local-address state`` for each of ``inodes`` (from /proc/net)."""
    described = []
    for proto in ("tcp", "udp", "tcp6", "udp6", "unix"):
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/self/net/{proto}").read_text().splitlines()[1:]:
                fields = line.split()
                inode = fields[6] if proto == "unix" else fields[9]
                if inode in inodes:
                    where, state = (fields[-1], fields[5]) if proto == "unix" else fields[1:4:2]
                    described.append(f"{proto} {where} state {state}")
    return described


async def test_aborted_connects_release_everything_on_the_host(engine: str) -> None:
    """Regression: clients giving up mid-connect (timeouts of 5-80 ms) left aioice
    consent-check tasks running on the host, one per abort, never freed."""
    import asyncio
    import random

    from mcp_webrtc import MCPWebRTCError

    async with rendezvous() as server, serving(server.url):
        baseline_tasks, baseline_inodes = len(asyncio.all_tasks()), socket_inodes()
        baseline_sockets = len(baseline_inodes)
        rng = random.Random(5)
        fast = engine == "libwebrtc"
        aborted = 0
        for _ in range(50):
            # libwebrtc connects in a few milliseconds here: abort it sooner
            quick = options(connect_timeout=rng.uniform(0.005, 0.08) / (4 if fast else 1))
            try:
                async with connect(server.url, room="lab", token=CLIENT_TOKEN, options=quick):
                    pass  # a fast one connected: it leaves at once, also fine
            except MCPWebRTCError:
                aborted += 1
        assert aborted >= 10, "the timeouts should abort many connects, at every stage"
        try:
            await support.wait_until(
                lambda: (
                    len(asyncio.all_tasks()) <= baseline_tasks
                    and open_sockets() <= baseline_sockets
                ),
                limit=20,
            )
        except TimeoutError:
            left = sorted(getattr(t.get_coro(), "__qualname__", "?") for t in asyncio.all_tasks())
            raise AssertionError(
                f"tasks {baseline_tasks} -> {left}; sockets {baseline_sockets} -> "
                f"{open_sockets()}: {describe_sockets(socket_inodes() - baseline_inodes)}"
            ) from None


class Unheard:
    """Engine events nobody listens to."""

    def channel_open(self) -> None: ...
    def channel_closed(self) -> None: ...
    def message(self, data: str | bytes) -> None: ...
    def drained(self) -> None: ...
    def local_candidate(self, candidate: object) -> None: ...
    def failed(self) -> None: ...
    def closed(self) -> None: ...


async def test_an_engine_closed_while_gathering_keeps_no_socket(engine: str) -> None:
    """Regression: a peer connection closed while aioice was still opening its sockets
    (a connect given up during gathering, frequent on a busy host) kept them open for
    good; the test above caught one or two per run under load."""
    import asyncio

    from mcp_webrtc import engines
    from mcp_webrtc.engines.addresses import address_predicate

    before = socket_inodes()
    for steps in range(8):  # close after 0..7 turns of the loop: every stage of gathering
        opts = options()
        made = engines.create(opts, (), Unheard(), address_predicate(opts.host_candidates))
        offering = asyncio.ensure_future(made.offer("mcp"))
        for _ in range(steps):
            await asyncio.sleep(0)
        await made.close()
        with contextlib.suppress(Exception, asyncio.CancelledError):
            await offering  # fails or not (libwebrtc cancels it): the connection is closed
    await support.wait_until(lambda: socket_inodes() <= before, limit=10)


async def test_twenty_clients_churning_never_cost_the_host_its_room(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Regression: with the rendezvous's default limits, 20 clients joining and leaving for
    60 s got the host kicked 10-22 times (its one connection had one client's rate budget),
    each kick unregistering the room: joins then failed."""
    import time

    caplog.set_level(logging.INFO, logger="mcp_webrtc.rendezvous")
    failures: list[BaseException] = []
    sessions = 0
    async with rendezvous() as server, serving(server.url):  # default limits
        deadline = time.monotonic() + 20

        async def churn() -> None:
            nonlocal sessions
            while time.monotonic() < deadline:
                transport = connect(server.url, room="lab", token=CLIENT_TOKEN, options=options())
                try:
                    async with mcp_client(transport) as client:
                        await client.list_tools()
                    sessions += 1
                except Exception as exc:
                    failures.append(exc)

        with anyio.fail_after(60):
            async with anyio.create_task_group() as tg:
                for _ in range(20):
                    tg.start_soon(churn)
    events = [r.getMessage() for r in caplog.records if r.name == "mcp_webrtc.rendezvous"]
    assert failures == []
    assert sum("event=register" in e for e in events) == 1  # never kicked, never again
    assert not any("rate limit" in e for e in events)
    assert sessions >= 20, sessions
