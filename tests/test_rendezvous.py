"""The rendezvous server on its own: protocol, tokens, limits, logs (no WebRTC here)."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import logging
import posixpath
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import resources
from typing import Any

import anyio
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from mcp_webrtc._core import rendezvous as proto
from mcp_webrtc._core.ratelimit import TokenBucket
from mcp_webrtc.rendezvous import RendezvousConfig, RendezvousServer
from mcp_webrtc.rendezvous.http import ASSETS

pytestmark = pytest.mark.anyio

HOST_TOKEN = "host-secret"
CLIENT_TOKEN = "client-secret"


@asynccontextmanager
async def rendezvous(**overrides: Any) -> AsyncIterator[RendezvousServer]:
    config: dict[str, Any] = {"port": 0, "host_tokens": (HOST_TOKEN,)}
    config.update(overrides)
    async with RendezvousServer(RendezvousConfig(**config)) as server:
        yield server


async def recv(ws: ClientConnection) -> Any:
    with anyio.fail_after(5):
        return json.loads(await ws.recv())


async def send(ws: ClientConnection, **message: Any) -> None:
    await ws.send(json.dumps(message))


@asynccontextmanager
async def host(server: RendezvousServer, room: str = "lab") -> AsyncIterator[ClientConnection]:
    async with connect(server.url, close_timeout=1) as ws:
        await send(ws, type="register", room=room, token=HOST_TOKEN, clientToken=CLIENT_TOKEN)
        assert (await recv(ws))["type"] == "registered"
        yield ws


@asynccontextmanager
async def client(
    server: RendezvousServer, room: str = "lab", token: str = CLIENT_TOKEN
) -> AsyncIterator[tuple[ClientConnection, Any]]:
    async with connect(server.url, close_timeout=1) as ws:
        await send(ws, type="join", room=room, token=token)
        yield ws, await recv(ws)


async def assert_refused(ws: ClientConnection, code: str) -> None:
    answer = await recv(ws)
    assert answer["type"] == "error", answer
    assert answer["code"] == code, answer
    with anyio.fail_after(5), pytest.raises(ConnectionClosed) as closed:
        await ws.recv()
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == proto.CLOSE_POLICY


async def test_signals_are_relayed_per_session_and_host_sees_joins_and_leaves() -> None:
    async with rendezvous() as server, host(server) as h:
        async with client(server) as (c1, joined1), client(server) as (c2, joined2):
            assert joined1["type"] == "joined"
            s1, s2 = joined1["session"], joined2["session"]
            assert s1 != s2
            assert {(await recv(h))["session"], (await recv(h))["session"]} == {s1, s2}
            await send(c1, type="signal", signal={"type": "answer", "sdp": "one"})
            assert await recv(h) == {
                "type": "signal",
                "session": s1,
                "signal": {"type": "answer", "sdp": "one"},
            }
            await send(h, type="signal", session=s2, signal={"type": "offer", "sdp": "two"})
            assert await recv(c2) == {"type": "signal", "signal": {"type": "offer", "sdp": "two"}}
        # both clients left
        left = {(await recv(h))["session"] for _ in range(2)}
        assert left == {s1, s2}


async def test_wrong_host_token_is_refused() -> None:
    async with rendezvous() as server, connect(server.url) as ws:
        await send(ws, type="register", room="lab", token="nope", clientToken="x")
        await assert_refused(ws, proto.UNAUTHORIZED)


async def test_unknown_room_and_wrong_token_get_the_same_answer() -> None:
    async with rendezvous() as server, host(server):
        async with client(server, token="wrong") as (_ws1, first):
            pass
        async with client(server, room="nosuchroom") as (_ws2, second):
            pass
    assert (
        first
        == second
        == {"type": "error", "code": proto.UNAUTHORIZED, "message": "unknown room or wrong token"}
    )


@pytest.mark.parametrize(
    "hello",
    [
        {"type": "join", "room": "lab"},  # missing token
        {"type": "join", "room": "lab", "token": ""},
        {"type": "register", "room": "bad room!", "token": HOST_TOKEN, "clientToken": "c"},
        {"type": "dance"},
        "not json",
    ],
)
async def test_malformed_hello_is_refused_clearly(hello: Any) -> None:
    async with rendezvous() as server, connect(server.url) as ws:
        await ws.send(hello if isinstance(hello, str) else json.dumps(hello))
        await assert_refused(ws, proto.BAD_MESSAGE)


async def test_room_taken_and_limits() -> None:
    async with rendezvous(max_rooms=1, max_sessions_per_room=1) as server, host(server):
        async with connect(server.url) as ws:
            await send(ws, type="register", room="lab", token=HOST_TOKEN, clientToken="c")
            await assert_refused(ws, proto.ROOM_TAKEN)
        async with connect(server.url) as ws:
            await send(ws, type="register", room="other", token=HOST_TOKEN, clientToken="c")
            await assert_refused(ws, proto.TOO_MANY_ROOMS)
        async with client(server) as (_, joined):
            assert joined["type"] == "joined"
            async with client(server) as (ws, refused):
                assert refused["code"] == proto.ROOM_FULL


async def flood_until_refused(ws: ClientConnection) -> None:
    """Send 50 signals at once; the rendezvous answers rate-limited and closes."""
    codes: list[str] = []

    async def flood_and_read() -> None:
        for _ in range(50):
            await send(ws, type="signal", signal={"type": "candidate"})
        while True:
            codes.append(json.loads(await ws.recv()).get("code"))

    # Bounded: with a flood still unread, the close handshake used to stall for 10 s.
    with anyio.fail_after(5), pytest.raises(ConnectionClosed) as closed:
        await flood_and_read()
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == proto.CLOSE_POLICY
    assert proto.RATE_LIMITED in codes


async def test_oversize_and_flood_are_refused_while_others_keep_working(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="mcp_webrtc.rendezvous")
    async with (
        rendezvous(max_message_size=4096, rate=5, burst=10) as server,
        host(server) as h,
        client(server) as (good, joined),
    ):
        session = joined["session"]
        await recv(h)  # peer-joined
        async with client(server) as (big, _):
            await recv(h)
            await big.send(json.dumps({"type": "signal", "signal": {"sdp": "x" * 10_000}}))
            with anyio.fail_after(5), pytest.raises(ConnectionClosed) as closed:
                await big.recv()
            assert closed.value.rcvd is not None
            assert closed.value.rcvd.code == proto.CLOSE_TOO_BIG
        await recv(h)  # peer-left
        async with client(server) as (flood, _):
            await recv(h)
            await flood_until_refused(flood)
        await send(good, type="signal", signal={"type": "answer", "sdp": "still here"})
        seen = []
        while (message := await recv(h)).get("signal", {}).get("sdp") != "still here":
            seen.append(message["type"])  # the flood's first burst, then its leave
        assert message["session"] == session
        assert seen[-1] == "peer-left"
    logs = caplog.text
    assert "event=register" in logs
    assert 'room="lab"' in logs
    assert "event=join" in logs
    assert "event=leave" in logs
    assert 'reason="rate limit"' in logs
    assert 'reason="message too big"' in logs
    assert HOST_TOKEN not in logs
    assert CLIENT_TOKEN not in logs


async def test_host_leaving_tells_waiting_clients() -> None:
    async with rendezvous() as server, host(server) as h, client(server) as (c, _):
        await recv(h)
        await h.close()
        answer = await recv(c)
        assert answer["code"] == proto.HOST_LEFT


async def test_health_endpoint_and_origin_allow_list() -> None:
    async with rendezvous(allowed_origins=("http://app.test",)) as server:
        reader_stream = await anyio.connect_tcp("127.0.0.1", server.port)
        async with reader_stream:
            await reader_stream.send(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            response = b""
            with anyio.fail_after(5):
                while b"}" not in response:
                    response += await reader_stream.receive()
        head, _, body = response.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200")
        health = json.loads(body)
        assert (health["status"], health["backend"]) == ("ok", "memory")
        assert (health["rooms"], health["sessions"], health["hosts"]) == (0, 0, 0)
        with pytest.raises(InvalidStatus) as refused:
            async with connect(server.url, origin="http://evil.test"):  # type: ignore[arg-type]
                pass
        assert refused.value.response.status_code == 403
        async with connect(server.url, origin="http://app.test") as ws:  # type: ignore[arg-type]
            await send(ws, type="register", room="lab", token=HOST_TOKEN, clientToken="c")
            assert (await recv(ws))["type"] == "registered"


async def http_get(port: int, path: str) -> tuple[int, dict[str, str], bytes]:
    """Status, headers (lower-case names) and body of a plain HTTP GET."""
    stream = await anyio.connect_tcp("127.0.0.1", port)
    async with stream:
        await stream.send(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        response = b""
        with anyio.fail_after(5):
            while b"\r\n\r\n" not in response:
                response += await stream.receive()
            head, _, body = response.partition(b"\r\n\r\n")
            lines = head.decode().split("\r\n")
            headers = {k.lower(): v.strip() for k, _, v in (h.partition(":") for h in lines[1:])}
            while len(body) < int(headers["content-length"]):
                body += await stream.receive()
    return int(lines[0].split()[1]), headers, body


async def test_the_module_and_every_part_it_imports_are_served_and_nothing_else() -> None:
    """GET /mcp-webrtc.js, then each module it imports, resolved from its relative imports
    as a browser does (./mcp-webrtc/<part>.js): JavaScript, byte for byte the package's file.
    They are exactly the parts in assets/mcp-webrtc/ and ASSETS lists each; any other path
    there (or a way out of it) is not found."""
    assets = resources.files("mcp_webrtc.assets")
    parts = {f"/mcp-webrtc/{p.name}" for p in assets.joinpath("mcp-webrtc").iterdir()}
    assert {path for path in ASSETS if path.startswith("/mcp-webrtc/")} == parts
    async with rendezvous() as server:
        fetched, queue = set(), ["/mcp-webrtc.js"]
        while queue:
            path = queue.pop()
            fetched.add(path)
            status, headers, body = await http_get(server.port, path)
            assert status == 200, path
            assert headers["content-type"] == "text/javascript; charset=utf-8"
            assert body == assets.joinpath(*path[1:].split("/")).read_bytes()
            for target in re.findall(rb'\bfrom "(\.{1,2}/[^"]+)"', body):
                url = posixpath.normpath(posixpath.join(posixpath.dirname(path), target.decode()))
                if url not in fetched:
                    queue.append(url)
        assert fetched == {"/mcp-webrtc.js", *parts}
        for path in (
            "/mcp-webrtc/",
            "/mcp-webrtc/nope.js",
            "/mcp-webrtc/../inspector.html",
            "/mcp-webrtc/%2e%2e/mcp-webrtc.js",
            "/mcp-webrtc//errors.js",
            "/mcp-webrtc/errors",
            "/mcp-webrtc.d.ts",
            "/__init__.py",
        ):
            status, _, _ = await http_get(server.port, path)
            assert status == 404, path


async def test_time_limited_turn_credentials_in_coturn_rest_form() -> None:
    secret = "coturn-shared-secret"
    async with (
        rendezvous(
            turn_urls=("turn:127.0.0.1:3478",),
            turn_secret=secret,
            turn_ttl=600,
            stun_urls=("stun:127.0.0.1:3478",),
        ) as server,
        host(server),
        client(server) as (_, joined),
    ):
        stun, turn = joined["iceServers"]
    assert stun == {"urls": ["stun:127.0.0.1:3478"]}
    expiry, _, name = turn["username"].partition(":")
    assert name.startswith("client-")
    assert int(expiry) > 0
    expected = base64.b64encode(
        hmac.new(secret.encode(), turn["username"].encode(), hashlib.sha1).digest()
    ).decode()
    assert turn["credential"] == expected


def test_token_bucket() -> None:
    bucket = TokenBucket(rate=2, burst=3)
    assert [bucket.allow(0.0) for _ in range(4)] == [True, True, True, False]
    assert bucket.allow(0.5)  # one token back after half a second at 2/s
    assert not bucket.allow(0.5)


def test_tls_needs_certificate_and_key_together() -> None:
    """Regression: a certificate without its key served plain ws:// but announced wss://."""
    with pytest.raises(ValueError, match="both tls_cert and tls_key"):
        RendezvousConfig(tls_cert="cert.pem")
    with pytest.raises(ValueError, match="turn_secret"):
        RendezvousConfig(turn_urls=("turn:127.0.0.1:3478",))


async def test_a_rendezvous_that_never_answers_gives_a_clear_error() -> None:
    """Regression: registering waited forever for a reply that never came."""
    from websockets.asyncio.server import serve

    from mcp_webrtc.exceptions import SignalingError
    from mcp_webrtc.websocket_signaling import RendezvousHost

    async def silent(ws: Any) -> None:
        await ws.wait_closed()  # accepts the WebSocket, never answers

    async with serve(silent, "127.0.0.1", 0) as mute:
        port = mute.sockets[0].getsockname()[1]
        host = RendezvousHost(f"ws://127.0.0.1:{port}/", "lab", "t", "c", open_timeout=1)
        with anyio.fail_after(10), pytest.raises(SignalingError, match="no answer"):
            async with host:
                pass


async def test_a_client_that_stops_reading_cannot_stall_its_room() -> None:
    """Regression: relaying waited for the slowest reader, so one stuck client froze the
    host's signaling for every session of the room."""
    async with (
        # a long send_timeout: relaying must not wait for it (it used to, 30 s here)
        rendezvous(
            send_timeout=30, rate=10_000, burst=10_000, max_message_size=128 * 1024
        ) as server,
        host(server) as h,
        client(server) as (good, good_joined),
        connect(server.url, max_queue=1, close_timeout=1) as stuck,
    ):
        await send(stuck, type="join", room="lab", token=CLIENT_TOKEN)
        await recv(h)
        await recv(h)  # both peer-joined
        stuck_session = None
        while stuck_session is None:  # the stuck client's own joined answer
            stuck_session = json.loads(await stuck.recv()).get("session")
        # the host floods the stuck client, which reads nothing more
        for _ in range(300):
            await send(h, type="signal", session=stuck_session, signal={"sdp": "x" * 60_000})
        await send(h, type="signal", session=good_joined["session"], signal={"sdp": "still here"})
        with anyio.fail_after(10):
            relayed = await good.recv()
        assert json.loads(relayed)["signal"]["sdp"] == "still here"


@pytest.mark.parametrize("room", ["lab\n", "lab\r", "\nlab"])
async def test_room_names_must_match_whole(room: str) -> None:
    """Regression: `$` matched before a trailing newline, so "lab\n" was a valid room."""
    async with rendezvous() as server, connect(server.url) as ws:
        await send(ws, type="register", room=room, token=HOST_TOKEN, clientToken=CLIENT_TOKEN)
        await assert_refused(ws, proto.BAD_MESSAGE)


async def test_error_answers_never_echo_the_input() -> None:
    async with (
        rendezvous(rate=10_000, burst=10_000) as server,
        host(server) as h,
        client(server) as (c, _),
    ):
        await recv(h)
        await send(c, type="x" * 60_000)
        answer = await recv(c)
        assert answer["code"] == proto.BAD_MESSAGE
        assert len(json.dumps(answer)) < 200
        await send(h, type="y" * 60_000)
        answer = await recv(h)
        assert answer["code"] == proto.BAD_MESSAGE
        assert len(json.dumps(answer)) < 200


def small_receive_buffer(port: int) -> Any:
    """A client socket whose kernel buffer fills after a few KB (not megabytes)."""
    import socket

    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    return sock


async def test_a_client_that_never_reads_is_cut_off() -> None:
    """Regression: a joined client sending malformed messages and reading none of the
    answers stayed connected forever (answers were sent without a timeout)."""
    async with (
        rendezvous(send_timeout=1, rate=10**6, burst=10**6, max_send_queue=256 * 1024) as server,
        host(server) as h,
        connect(
            server.url, max_queue=1, close_timeout=1, sock=small_receive_buffer(server.port)
        ) as deaf,
    ):
        await send(deaf, type="join", room="lab", token=CLIENT_TOKEN)
        session = (await recv(h))["session"]
        with anyio.fail_after(30):  # bounded by the queue and send_timeout, not forever
            with contextlib.suppress(ConnectionClosed):
                while True:  # errors pile up unread: the kernel buffers, then our queue
                    await send(deaf, type="z" * 1000)
            while (message := await recv(h))["type"] != "peer-left":
                pass
        assert message["session"] == session


async def test_a_host_serving_churning_sessions_is_never_disconnected() -> None:
    """Regression: the host's one connection had one client's budget, so ordinary
    churn (20 clients joining and leaving) got it kicked, unregistering the room."""
    async with rendezvous() as server, host(server) as h:  # default rate and burst
        for _ in range(40):
            async with anyio.create_task_group() as tg:
                for _ in range(20):

                    async def one() -> None:
                        async with client(server) as (_c, joined):
                            assert joined["type"] == "joined"

                    tg.start_soon(one)
            sessions: list[str] = []
            while len(sessions) < 20:  # the host answers each session as serve does
                message = await recv(h)
                if message["type"] == "peer-joined":
                    sessions.append(message["session"])
            for session in sessions:
                await send(h, type="signal", session=session, signal={"type": "offer", "sdp": "o"})
                await send(h, type="signal", session=session, signal={"type": "bye"})
                await send(h, type="leave", session=session)
        # 2 400 messages from the host within seconds: still registered, still relaying
        async with client(server) as (c, joined):
            session = joined["session"]
            while (message := await recv(h)).get("session") != session or (
                message["type"] != "peer-joined"
            ):
                pass
            await send(h, type="signal", session=session, signal={"type": "offer", "sdp": "o"})
            assert (await recv(c))["signal"] == {"type": "offer", "sdp": "o"}


async def test_a_host_over_one_session_budget_loses_that_session_only() -> None:
    async with (
        rendezvous(rate=1, burst=5) as server,
        host(server) as h,
        client(server) as (flooded, flooded_joined),
        client(server) as (calm, calm_joined),
    ):
        await recv(h)
        await recv(h)
        flooded_session = flooded_joined["session"]
        for _ in range(6):
            await send(h, type="signal", session=flooded_session, signal={"type": "candidate"})
        for _ in range(5):
            assert (await recv(flooded))["type"] == "signal"
        assert (await recv(flooded))["code"] == proto.RATE_LIMITED
        answer = await recv(h)
        assert (answer["code"], answer["session"]) == (proto.RATE_LIMITED, flooded_session)
        await send(h, type="signal", session=calm_joined["session"], signal={"type": "offer"})
        assert (await recv(calm))["signal"] == {"type": "offer"}


async def test_host_leave_gives_its_client_host_left() -> None:
    async with rendezvous() as server, host(server) as h, client(server) as (c, joined):
        await recv(h)
        await send(h, type="leave", session=joined["session"])
        answer = await recv(c)
        assert answer == {
            "type": "error",
            "code": proto.HOST_LEFT,
            "message": "the host closed this session",
        }


async def test_each_session_gets_fresh_turn_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """Regression: the host's credentials were minted once at register, so a serve running
    longer than turn_ttl handed expired ones to every new session."""
    import time
    import types

    async with (
        rendezvous(turn_urls=("turn:127.0.0.1:3478",), turn_secret="s", turn_ttl=60) as server,
        host(server) as h,
    ):
        later = time.time() + 3600  # an hour after registering: the first ones expired
        monkeypatch.setattr(proto, "time", types.SimpleNamespace(time=lambda: later))
        async with client(server):
            joined = await recv(h)
        assert joined["type"] == "peer-joined"
        (turn,) = joined["iceServers"]
        expiry, _, name = turn["username"].partition(":")
        assert int(expiry) >= later + 60 - 1
        assert name == "host-lab"


async def test_dns_rebinding_shape_is_refused_and_configured_origins_admitted() -> None:
    """Regression: an Origin equal to the request's own Host header was admitted, which is
    exactly what a DNS-rebinding page sends; behind a TLS proxy the inspector was refused."""
    config = {"public_url": "https://rdv.example.org/", "allowed_origins": ("http://app.test",)}
    async with rendezvous(**config) as server:
        port = server.port
        rebinding = f"ws://rebind.example:{port}/"  # Host: rebind.example:PORT
        with pytest.raises(InvalidStatus) as refused:
            async with connect(
                rebinding,
                host="127.0.0.1",
                port=port,
                origin=f"http://rebind.example:{port}",  # type: ignore[arg-type]
            ):
                pass
        assert refused.value.response.status_code == 403
        for origin in (
            "https://rdv.example.org",  # the proxy's public origin
            "http://app.test",
            f"http://127.0.0.1:{port}",  # the inspector opened on this machine
            "http://localhost:3000",
            "http://[::1]:8080",
        ):
            async with connect(server.url, origin=origin) as ws:  # type: ignore[arg-type]
                await send(ws, type="join", room="nope", token="t")
                assert (await recv(ws))["code"] == proto.UNAUTHORIZED
        for origin in ("https://evil.example", "http://rdv.example.org", "null"):
            with pytest.raises(InvalidStatus):
                async with connect(server.url, origin=origin):  # type: ignore[arg-type]
                    pass


async def test_no_token_or_credential_is_logged_at_any_level(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Regression: at DEBUG, websockets' frame dumps showed tokens and TURN credentials."""
    caplog.set_level(logging.DEBUG)
    secret = "turn-shared-secret"
    async with (
        rendezvous(turn_urls=("turn:127.0.0.1:3478",), turn_secret=secret) as server,
        host(server) as h,
        client(server) as (c, joined),
        client(server, token="wrong-client-token") as (_, refused),
    ):
        await recv(h)
        await send(c, type="signal", signal={"type": "answer", "sdp": "a=ice-pwd:icepassword"})
        await recv(h)
        assert refused["code"] == proto.UNAUTHORIZED
    credential = joined["iceServers"][0]["credential"]
    # everything but this test's own raw clients (websockets.client dumps their frames)
    ours = "\n".join(r.getMessage() for r in caplog.records if r.name != "websockets.client")
    assert "event=join" in ours
    for secret_text in (HOST_TOKEN, CLIENT_TOKEN, "wrong-client-token", credential, secret):
        assert secret_text not in ours
    assert "icepassword" not in ours
