"""`connect` and `serve` as their users meet them: real processes, real MCP clients and
servers, and every way a session can end (the far side killed, stdin closed, a refusal)."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest
from anyio.abc import Process
from anyio.streams.buffered import BufferedByteReceiveStream
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

from mcp_webrtc import WebRTCServerTransport, run_server
from mcp_webrtc.peer import PEER_CLOSED
from mcp_webrtc.serve import connect
from mcp_webrtc.websocket_signaling import RendezvousHost

from . import support
from .support import MCPError, text_of

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parent.parent
EVERYTHING = ROOT / "tests/node/node_modules/@modelcontextprotocol/server-everything/dist/index.js"
HOST_TOKEN, CLIENT_TOKEN = "bridge-host-token", "bridge-client-token"
DEAD = 3.0  # dead_peer_timeout given to both commands
#: How a peer that stops on purpose ends a session: its bye (through the rendezvous) or its
#: channel's close (direct), whichever arrives first.
DELIBERATE = ("peer said bye", PEER_CLOSED)


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "mcp_webrtc", *args]


def initialize(request_id: int = 1) -> dict[str, Any]:
    params = {"protocolVersion": "2025-06-18", "capabilities": {}}
    params["clientInfo"] = {"name": "raw", "version": "1"}
    return {"jsonrpc": "2.0", "id": request_id, "method": "initialize", "params": params}


INITIALIZED = {"jsonrpc": "2.0", "method": "notifications/initialized"}


def request(request_id: int, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params or {}}


def call(request_id: int, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
    return request(request_id, "tools/call", {"name": tool, "arguments": arguments})


class Raw:
    """A process spoken to line by line, as any stdio MCP client does. Its stderr is read
    all along (a full pipe would block it) into ``stderr_lines``."""

    def __init__(self, process: Process) -> None:
        self.process = process
        assert process.stdout is not None
        assert process.stderr is not None
        self._out = BufferedByteReceiveStream(process.stdout)
        self._err = BufferedByteReceiveStream(process.stderr)
        self.stderr_lines: list[str] = []
        self._more = anyio.Event()
        self._stderr_done = anyio.Event()

    async def read_stderr(self) -> None:
        try:
            while True:
                line = await self._err.receive_until(b"\n", 1 << 20)
                self.stderr_lines.append(line.decode())
                self._more.set()
                self._more = anyio.Event()
        except (anyio.EndOfStream, anyio.IncompleteRead, anyio.ClosedResourceError):
            pass
        finally:
            self._stderr_done.set()
            self._more.set()

    async def send(self, message: dict[str, Any]) -> None:
        assert self.process.stdin is not None
        await self.process.stdin.send(json.dumps(message).encode() + b"\n")

    async def close_stdin(self) -> None:
        assert self.process.stdin is not None
        await self.process.stdin.aclose()

    async def recv_line(self, within: float = 20) -> str:
        with anyio.fail_after(within):
            return (await self._out.receive_until(b"\n", 1 << 24)).decode()

    async def recv(self, within: float = 20) -> dict[str, Any]:
        answer: dict[str, Any] = json.loads(await self.recv_line(within))
        return answer

    async def stdout_closed(self, within: float = 20) -> bool:
        with anyio.fail_after(within):
            try:
                extra = await self._out.receive()
            except anyio.EndOfStream:
                return True
        raise AssertionError(f"more output: {extra!r}")

    async def stderr_until(self, text: str, within: float = 30) -> None:
        with anyio.fail_after(within):
            while not any(text in line for line in self.stderr_lines):
                if self._stderr_done.is_set():
                    raise AssertionError(f"{text!r} never came: {self.stderr_lines}")
                await self._more.wait()

    async def exit_status(self, within: float = 20) -> int:
        with anyio.fail_after(within):
            status = await self.process.wait()
            await self._stderr_done.wait()
        return status


@asynccontextmanager
async def process(*args: str, env: dict[str, str] | None = None) -> AsyncIterator[Raw]:
    proc = await anyio.open_process(cli(*args), cwd=ROOT, env=env)
    raw = Raw(proc)
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(raw.read_stderr)
            yield raw
            tg.cancel_scope.cancel()
    except BaseException:
        print(f"stderr of mcp-webrtc {args[0]}:\n" + "\n".join(raw.stderr_lines[-40:]))
        raise
    finally:
        if proc.returncode is None:
            proc.kill()
        with anyio.fail_after(10), anyio.CancelScope(shield=True):
            await proc.wait()
            await proc.aclose()


def connect_args(url: str, *extra: str, token: str = CLIENT_TOKEN) -> list[str]:
    return [
        "connect",
        url,
        "--room",
        "lab",
        "--token",
        token,
        "--host-candidates",
        "loopback",
        "--dead-peer-timeout",
        str(DEAD),
        "--engine",
        support.ENGINE,
        *extra,
    ]


def serve_args(url: str, *target: str) -> list[str]:
    target = target or ("--app", "tests.app:SERVER")
    return support.serve_args(
        url, HOST_TOKEN, CLIENT_TOKEN, "--dead-peer-timeout", str(DEAD), *target
    )


def serve_process(url: str, *target: str) -> Any:
    return process(*serve_args(url, *target))


def rendezvous() -> Any:
    return support.rendezvous(HOST_TOKEN)


wait_registered = support.wait_registered


async def started_session(client: Raw) -> None:
    """initialize, initialized, and one answered call: the session is up."""
    await client.send(initialize(1))
    assert (await client.recv())["id"] == 1
    await client.send(INITIALIZED)
    await client.send(request(2, "tools/list"))
    assert "tools" in (await client.recv())["result"]


# ------------------------------------------------------------------ the far side ends


@pytest.mark.parametrize(
    ("how", "reason", "bound"),
    [
        (signal.SIGKILL, "no answer from the peer", DEAD + 1.0),  # vanished: dead-peer time
        # said bye (and closed the channel): at once (it took 1 s while the MCP SDK's
        # shutdown answer waited for a sender task that the stop had cancelled)
        (signal.SIGTERM, "", 0.75),
        (signal.SIGINT, "", 0.75),
    ],
    ids=["SIGKILL", "SIGTERM", "SIGINT"],
)
async def test_connect_tells_its_client_when_serve_goes_away(
    how: signal.Signals, reason: str, bound: float
) -> None:
    """Regression: `connect` logged "peer gone" but answered nothing and never exited, so
    the client waited for its own request timeout."""
    async with rendezvous() as server, serve_process(server.url) as host:
        await wait_registered(server)
        async with process(*connect_args(server.url)) as client:
            await started_session(client)
            await client.send(call(3, "wait", {"seconds": 120}))  # pending at the server
            await client.send(call(4, "greet", {"name": "x"}))
            assert (await client.recv())["id"] == 4
            host.process.send_signal(how)
            gone_at = time.monotonic()
            answer = await client.recv(within=DEAD + 10)
            answered = time.monotonic() - gone_at
            assert answer["id"] == 3
            assert answer["error"]["code"] == -32000
            message = answer["error"]["message"]
            if reason:  # connect's own answer, naming why
                assert "went away" in message
                assert reason in message
            else:  # the server's SDK answers on its way out; else connect, naming the end
                assert message == "Connection closed" or any(w in message for w in DELIBERATE)
            assert await client.stdout_closed()
            assert answered <= bound
            assert await client.exit_status() == 1
            assert time.monotonic() - gone_at <= bound + 1.0
            assert len(client.stderr_lines) == 1, client.stderr_lines
            assert "went away" in client.stderr_lines[0]


async def test_connect_ends_when_serve_dies_while_idle_and_stdin_stays_open() -> None:
    """Regression: a `connect` whose far side died stayed alive for minutes (stdin open)."""
    async with rendezvous() as server, serve_process(server.url) as host:
        await wait_registered(server)
        async with process(*connect_args(server.url)) as client:
            await started_session(client)
            host.process.kill()
            assert await client.stdout_closed(within=DEAD + 5)
            assert await client.exit_status(within=5) == 1


async def test_serve_stops_gracefully_on_sigterm_saying_bye_to_every_peer() -> None:
    async with rendezvous() as server, serve_process(server.url) as host:
        await wait_registered(server)
        patient = support.options(dead_peer_timeout=30)  # so only a bye ends it quickly
        transports = [
            connect(server.url, room="lab", token=CLIENT_TOKEN, options=patient) for _ in range(3)
        ]
        async with anyio.create_task_group() as tg:
            for transport in transports:
                await tg.start(support.hold_client, transport)
            host.process.send_signal(signal.SIGTERM)
            stopped = time.monotonic()
            await support.wait_until(lambda: all(t.peer.gone for t in transports), limit=5)
            assert {t.peer.gone_reason for t in transports} <= set(DELIBERATE)
            assert await host.exit_status(within=10) == 0
            assert time.monotonic() - stopped < 5.0 + 1.0  # close_timeout, and a second
            tg.cancel_scope.cancel()


async def test_connect_says_bye_on_sigterm() -> None:
    async with (
        rendezvous() as server,
        RendezvousHost(server.url, "lab", HOST_TOKEN, CLIENT_TOKEN) as host,
        anyio.create_task_group() as tg,
    ):
        served: list[WebRTCServerTransport] = []

        async def serve_first() -> None:
            async for session in host.sessions():
                patient = support.options(dead_peer_timeout=30)  # so only a bye ends it quickly
                served.append(WebRTCServerTransport(session, patient))
                await run_server(support.make_server(), served[0])
                return

        tg.start_soon(serve_first)
        async with process(*connect_args(server.url)) as client:
            await started_session(client)
            await client.send(call(3, "wait", {"seconds": 120}))
            # signalled once the call is pending at the server (not still in connect's stdin)
            await support.wait_until(lambda: served[0].connection_info().messages_received >= 4)
            client.process.send_signal(signal.SIGTERM)
            answer = await client.recv()
            assert (answer["id"], answer["error"]["code"]) == (3, -32000)
            assert "stopped" in answer["error"]["message"]
            assert await client.exit_status(within=10) == 0
        await support.wait_until(lambda: served[0].peer.gone, limit=5)
        assert served[0].peer.gone_reason in DELIBERATE
        tg.cancel_scope.cancel()


# ------------------------------------------------------------------ stdin ends


async def test_answers_are_delivered_after_stdin_ends() -> None:
    """Regression: `printf '<initialize>\\n<initialized>\\n<tools/list>\\n' | connect`
    exited 0 and printed nothing."""
    lines = [initialize(1), INITIALIZED, request(2, "tools/list")]
    stdin = "".join(json.dumps(line) + "\n" for line in lines).encode()
    async with rendezvous() as server, serve_process(server.url):
        await wait_registered(server)
        with anyio.fail_after(60):
            done = await anyio.run_process(
                cli(*connect_args(server.url)), input=stdin, cwd=ROOT, check=False
            )
    answers = [json.loads(line) for line in done.stdout.decode().splitlines()]
    assert [a["id"] for a in answers] == [1, 2]
    assert {"greet", "echo"} <= {t["name"] for t in answers[1]["result"]["tools"]}
    assert done.returncode == 0, done.stderr.decode()


# ------------------------------------------------------------------ connecting fails


async def no_peer_host(url: str, *, task_status: Any) -> None:
    """A host that registers and never answers anyone (a wedged server)."""
    async with RendezvousHost(url, "lab", HOST_TOKEN, CLIENT_TOKEN) as host:
        task_status.started()
        async for _session in host.sessions():
            pass


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("wrong token", "unknown room or wrong token"),
        ("unknown room", "unknown room or wrong token"),
        ("unreachable", "cannot reach the rendezvous"),
        ("no peer", "no offer or answer arrived"),
    ],
)
async def test_connect_failures_reach_the_client(case: str, reason: str) -> None:
    """Regression: the MCP client showed only "Connection closed"."""
    async with rendezvous() as server, anyio.create_task_group() as tg:
        await tg.start(no_peer_host, server.url)
        url, extra, token = server.url, ["--connect-timeout", "2"], CLIENT_TOKEN
        if case == "wrong token":
            token = "not-the-token"
        elif case == "unknown room":
            extra += ["--room", "elsewhere"]
        elif case == "unreachable":
            url = f"ws://127.0.0.1:{support.free_port()}/"
        async with process(*connect_args(url, *extra, token=token)) as client:
            await client.send(initialize(7))
            answer = await client.recv()
            assert answer["id"] == 7
            assert reason in answer["error"]["message"]
            await client.close_stdin()
            assert await client.exit_status() == 1
            assert len(client.stderr_lines) == 1, client.stderr_lines
            assert reason in client.stderr_lines[0]
        tg.cancel_scope.cancel()


async def test_the_sdk_client_shows_why_it_cannot_connect() -> None:
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "mcp_webrtc", *connect_args("ws://127.0.0.1:9/")],
        cwd=str(ROOT),
    )
    with anyio.fail_after(30):
        async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
            with pytest.raises(MCPError, match="cannot reach the rendezvous"):
                await session.initialize()


async def test_wait_retries_until_the_server_registers() -> None:
    async with rendezvous() as server, process(*connect_args(server.url, "--wait", "60")) as client:
        await client.send(initialize(1))
        await client.stderr_until("waiting for room 'lab'")
        async with serve_process(server.url):
            answer = await client.recv(within=60)
            assert answer["id"] == 1
            assert "serverInfo" in answer["result"]


# ------------------------------------------------------------------ what serve's child gets


@pytest.mark.skipif(not EVERYTHING.exists(), reason="run `make test` to install the npm peers")
async def test_the_server_process_never_sees_our_secrets() -> None:
    """Regression: a remote client calling server-everything's get-env read both tokens."""
    env = {
        **os.environ,
        "MCP_WEBRTC_TOKEN": HOST_TOKEN,
        "MCP_WEBRTC_CLIENT_TOKEN": CLIENT_TOKEN,
        "UNRELATED_SECRET": "do-not-pass",
        "PASSED_ON": "by name",
    }
    target = ["--pass-env", "PASSED_ON", "--env", "SET_HERE=1", "--", "node", str(EVERYTHING)]
    async with (
        rendezvous() as server,
        process(
            "serve",
            server.url,
            "--room",
            "lab",
            "--host-candidates",
            "loopback",
            *target,
            env=env,
        ),
    ):
        await wait_registered(server)
        transport = connect(server.url, room="lab", token=CLIENT_TOKEN, options=support.options())
        async with support.mcp_client(transport) as session:
            seen = json.loads(text_of(await session.call_tool("get-env", {})))
    assert not any(name.startswith("MCP_WEBRTC_") for name in seen)
    assert HOST_TOKEN not in json.dumps(seen)
    assert CLIENT_TOKEN not in json.dumps(seen)
    assert "UNRELATED_SECRET" not in seen
    assert (seen["PASSED_ON"], seen["SET_HERE"]) == ("by name", "1")
    assert "PATH" in seen


async def test_passing_our_own_variables_is_refused() -> None:
    async with process(
        "serve",
        "ws://127.0.0.1:9/",
        "--room",
        "lab",
        "--token",
        "t",
        "--client-token",
        "c",
        "--pass-env",
        "MCP_WEBRTC_TOKEN",
        "--",
        "true",
    ) as serve:
        assert await serve.exit_status() == 1
    assert any("MCP_WEBRTC_TOKEN" in line for line in serve.stderr_lines)


# ------------------------------------------------------------------ secrets in logs


async def test_no_token_reaches_any_log_at_the_highest_verbosity(tmp_path: Path) -> None:
    """Regression: at -v the rendezvous logged the client token from websockets' frame
    dumps, and `connect -v -v` did too."""
    (tmp_path / "client.token").write_text(f"# the room's token\n{CLIENT_TOKEN}\n")
    port = support.free_port()
    url = f"ws://127.0.0.1:{port}/"
    async with process(
        "-vvv", "signal", "--port", str(port), "--host-token", HOST_TOKEN
    ) as rendezvous_process:
        await rendezvous_process.stderr_until("listening")
        async with process("-vvv", *serve_args(url)) as host:
            await host.stderr_until("registered room")
            async with process(
                "-vvv",
                "connect",
                url,
                "--room",
                "lab",
                "--token-file",
                str(tmp_path / "client.token"),
                "--host-candidates",
                "loopback",
            ) as client:
                await started_session(client)
                await client.close_stdin()
                assert await client.exit_status() == 0
            host.process.send_signal(signal.SIGTERM)
            assert await host.exit_status() == 0
        rendezvous_process.process.send_signal(signal.SIGTERM)
        assert await rendezvous_process.exit_status() == 0
    for who in (rendezvous_process, host, client):
        logged = "".join(who.stderr_lines)
        assert "DEBUG" in logged  # the highest level really was on
        assert HOST_TOKEN not in logged
        assert CLIENT_TOKEN not in logged


# ------------------------------------------------------------------ memory of a long-lived host


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


async def test_a_host_gives_memory_back_after_large_results() -> None:
    """Regression: a serve host grew from 108 to 396 MiB over rounds of five concurrent
    8 MiB results and stayed at 316 MiB after every peer left (our whole-message copies,
    and glibc keeping freed multi-MiB buffers in its heap)."""
    size = 8 * 1024 * 1024
    async with rendezvous() as server, serve_process(server.url) as host:
        await wait_registered(server)
        start = rss_mib(host.process.pid)

        async def fetch() -> None:
            transport = connect(
                server.url, room="lab", token=CLIENT_TOKEN, options=support.options()
            )
            async with support.mcp_client(transport) as session:
                result = await session.call_tool("blob", {"size": size, "seed": 2})
                assert len(text_of(result)) == size

        with anyio.fail_after(120):
            for _ in range(2):
                async with anyio.create_task_group() as tg:
                    for _ in range(5):
                        tg.start_soon(fetch)
        await support.wait_until(lambda: rss_mib(host.process.pid) - start < 64, limit=20)


NODE_DIR = ROOT / "tests/node"


@pytest.mark.skipif(not (NODE_DIR / "node_modules").exists(), reason="run `make test`")
async def test_the_typescript_sdk_client_learns_that_the_server_went_away() -> None:
    """The official TypeScript SDK's stdio client, through `connect`: its pending call is
    answered when serve is killed, instead of waiting for its own request timeout."""
    async with rendezvous() as server, serve_process(server.url) as host:
        await wait_registered(server)
        command = ["node", "stdio_client.mjs", *cli(*connect_args(server.url))]
        node = await anyio.open_process(command, cwd=NODE_DIR, stderr=None)
        async with node:
            assert node.stdout is not None
            lines = BufferedByteReceiveStream(node.stdout)
            with anyio.fail_after(60):
                ready = json.loads(await lines.receive_until(b"\n", 1 << 20))
            assert "wait" in ready["ready"]
            host.process.kill()
            with anyio.fail_after(DEAD + 10):
                outcome = json.loads(await lines.receive_until(b"\n", 1 << 20))
                assert await node.wait() == 0
    assert "went away" in outcome["error"]
    assert "no answer from the peer" in outcome["error"]


async def test_bridges_pass_messages_through_byte_for_byte(tmp_path: Path) -> None:
    """connect and serve forward JSON-RPC as it is: no parsing, no re-serializing."""
    log = tmp_path / "lines"
    sent = (
        '{ "params" :{"text": "caf\\u00e9 \\ud83d\\ude00", "n": 1.50},'
        ' "method":"raw/echo",   "jsonrpc":"2.0", "id":"a-1" }'
    )
    child = ["--", sys.executable, "-m", "tests.raw_stdio_server", str(log)]
    async with rendezvous() as server, serve_process(server.url, *child):
        await wait_registered(server)
        async with process(*connect_args(server.url)) as client:
            assert client.process.stdin is not None
            await client.process.stdin.send(sent.encode() + b"\n")
            line = await client.recv_line()
    expected = '{"result":  {"line":  ' + json.dumps(sent) + '},  "jsonrpc":  "2.0",  "id":  "a-1"}'
    assert line == expected  # the server's own formatting, untouched
    assert log.read_text() == sent + "\n"  # and the client's, at the server


# ------------------------------------------------------------------ a peer that leaves


async def test_a_stdio_server_is_told_the_requests_of_a_peer_that_left_are_cancelled(
    tmp_path: Path,
) -> None:
    """Work a peer asked for and no longer waits for is cancelled: the stdio server gets
    notifications/cancelled for each unanswered request (servers that do not stop on
    end of input would otherwise run it for minutes)."""
    log = tmp_path / "lines"
    child = ["--", sys.executable, "-m", "tests.raw_stdio_server", str(log)]
    held = request(5, "tests/hold")  # never answered by this server
    async with rendezvous() as server, serve_process(server.url, *child):
        await wait_registered(server)
        async with process(*connect_args(server.url)) as client:
            await client.send(request(4, "raw/echo"))
            assert (await client.recv())["id"] == 4  # answered: not cancelled later
            await client.send(held)
            await support.wait_until(lambda: log.exists() and "tests/hold" in log.read_text())
            client.process.send_signal(signal.SIGTERM)  # connect says bye and leaves
            assert await client.exit_status() == 0

        def cancellations() -> list[dict[str, Any]]:
            seen = [json.loads(line) for line in log.read_text().splitlines()]
            return [m for m in seen if m.get("method") == "notifications/cancelled"]

        await support.wait_until(lambda: cancellations() != [])
    (note,) = cancellations()
    assert note["params"]["requestId"] == 5
    assert "went away" in note["params"]["reason"]


async def test_an_in_process_server_cancels_the_calls_of_a_peer_that_left() -> None:
    from mcp_webrtc._compat import parse_message

    def message(obj: dict[str, Any]) -> Any:
        return parse_message(json.dumps(obj))

    async with rendezvous() as server, support.serving(server.url, HOST_TOKEN, CLIENT_TOKEN):
        transport = connect(server.url, room="lab", token=CLIENT_TOKEN, options=support.options())
        async with transport as (read, write):
            await write.send(message(initialize(1)))
            await read.receive()
            await write.send(message(INITIALIZED))
            await write.send(message(call(2, "wait", {"seconds": 613})))
            await support.wait_until(lambda: transport.connection_info().messages_sent >= 3)
        # left without cancelling: the server's handler is cancelled, not run for 10 minutes
        await support.wait_until(lambda: 613 in support.CANCELLED_WAITS)
