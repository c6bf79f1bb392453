"""The rendezvous: a WebSocket signaling server that hosts and clients both dial out to.

A host (the MCP server side) registers a room with a host token and sets the room's client
token; clients join the room with that client token. Each join opens a session; the
rendezvous relays signal objects between the host and that client, and tells the host of
joins and leaves. It never sees MCP traffic: once WebRTC is up, the peers talk directly and
the rendezvous may even go away. The protocol is in docs/protocol.md, §7.

Run it with ``mcp-webrtc signal`` or, in a program::

    async with RendezvousServer(RendezvousConfig(port=0, host_tokens=("secret",))) as server:
        print(server.url)
        await server.serve_forever()
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import ssl
import time
from dataclasses import dataclass, field
from http import HTTPStatus
from importlib import resources
from types import TracebackType
from typing import Any, Protocol

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from ._core import rendezvous as proto
from ._core.rendezvous import JSONObject, ProtocolError

logger = logging.getLogger("mcp_webrtc.rendezvous")


@dataclass(frozen=True, slots=True)
class RendezvousConfig:
    """Everything the rendezvous server can be told.

    Attributes:
        host, port: Where to listen (``port=0`` picks a free port).
        host_tokens: Tokens that may register rooms. Empty: anyone may register (for a
            private network or tests only; a warning is logged).
        max_message_size: Largest WebSocket message accepted, in bytes (SDPs are ~1-5 KB).
        max_rooms: Rooms registered at once.
        max_sessions_per_room: Clients joined to one room at once.
        rate, burst: Messages per second each connection may send on average, and in a
            burst; a connection above it is refused and closed.
        allowed_origins: Browser origins allowed to connect (``Origin`` header). Connections
            without an Origin (programs, not browsers) and pages this server serves itself
            (the inspector at ``/``) are always allowed.
        tls_cert, tls_key: PEM files; with both set the server speaks ``wss://``.
        stun_urls: STUN URLs handed to every peer.
        turn_urls: TURN URLs handed to every peer, with credentials from ``turn_secret``
            (coturn ``use-auth-secret``, valid ``turn_ttl`` seconds) or the static
            ``turn_username``/``turn_password``.
        hello_timeout: Seconds a new connection has to register or join.
        send_timeout: Seconds a relayed message may wait for a slow reader; a peer that
            stops reading is disconnected rather than stalling its room.
    """

    host: str = "127.0.0.1"
    port: int = 8765
    host_tokens: tuple[str, ...] = ()
    max_message_size: int = 64 * 1024
    max_rooms: int = 1000
    max_sessions_per_room: int = 1000
    rate: float = 50.0
    burst: float = 200.0
    allowed_origins: tuple[str, ...] = ()
    tls_cert: str | None = None
    tls_key: str | None = None
    stun_urls: tuple[str, ...] = ()
    turn_urls: tuple[str, ...] = ()
    turn_secret: str | None = None
    turn_ttl: float = 3600.0
    turn_username: str | None = None
    turn_password: str | None = None
    hello_timeout: float = 10.0
    send_timeout: float = 5.0

    def __post_init__(self) -> None:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("TLS needs both tls_cert and tls_key")
        if self.turn_urls and not self.turn_secret and not self.turn_username:
            raise ValueError("turn_urls need turn_secret or turn_username/turn_password")

    def ice_servers(self, name: str) -> list[JSONObject]:
        """The ``iceServers`` list handed to a peer (TURN credentials made for ``name``)."""
        servers: list[JSONObject] = []
        if self.stun_urls:
            servers.append({"urls": list(self.stun_urls)})
        if self.turn_urls:
            if self.turn_secret:
                user, password = proto.turn_rest_credentials(self.turn_secret, name, self.turn_ttl)
            else:
                user, password = self.turn_username or "", self.turn_password or ""
            servers.append({"urls": list(self.turn_urls), "username": user, "credential": password})
        return servers


class Endpoint(Protocol):
    """One connected host or client, as the backend sees it."""

    async def deliver(self, message: JSONObject) -> None: ...

    async def drop(self, reason: str) -> None: ...


class Refused(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class RendezvousBackend(Protocol):
    """Room and session state. :class:`MemoryBackend` keeps it in this process; a shared
    backend (Redis, a database) can implement the same methods to spread hosts and clients
    over several rendezvous processes."""

    async def register(self, room: str, client_digest: bytes, host: Endpoint) -> None: ...

    async def unregister(self, room: str, host: Endpoint) -> list[Endpoint]: ...

    async def join(self, room: str, token: str, client: Endpoint) -> tuple[str, Endpoint]: ...

    async def leave(self, session: str) -> Endpoint | None: ...

    async def host_drops(self, room: str, session: str) -> Endpoint | None: ...

    async def peer_of(
        self, session: str, side: proto.Side, room: str | None
    ) -> Endpoint | None: ...

    async def counts(self) -> tuple[int, int]: ...


@dataclass
class _Room:
    client_digest: bytes
    host: Endpoint
    sessions: dict[str, Endpoint] = field(default_factory=dict)


class MemoryBackend:
    """In-process rooms and sessions (the default)."""

    def __init__(self, max_rooms: int, max_sessions_per_room: int) -> None:
        self.max_rooms = max_rooms
        self.max_sessions_per_room = max_sessions_per_room
        self._rooms: dict[str, _Room] = {}
        self._sessions: dict[str, str] = {}  # session -> room

    async def register(self, room: str, client_digest: bytes, host: Endpoint) -> None:
        if room in self._rooms:
            raise Refused(proto.ROOM_TAKEN, "this room already has a host")
        if len(self._rooms) >= self.max_rooms:
            raise Refused(proto.TOO_MANY_ROOMS, "the rendezvous holds its maximum of rooms")
        self._rooms[room] = _Room(client_digest, host)

    async def unregister(self, room: str, host: Endpoint) -> list[Endpoint]:
        entry = self._rooms.get(room)
        if entry is None or entry.host is not host:
            return []
        del self._rooms[room]
        for session in entry.sessions:
            self._sessions.pop(session, None)
        return list(entry.sessions.values())

    async def join(self, room: str, token: str, client: Endpoint) -> tuple[str, Endpoint]:
        entry = self._rooms.get(room)
        # One answer for an unknown room and a wrong token: rooms cannot be probed.
        digest = entry.client_digest if entry is not None else proto.token_digest("\0")
        if not proto.token_matches(token, digest) or entry is None:
            raise Refused(proto.UNAUTHORIZED, "unknown room or wrong token")
        if len(entry.sessions) >= self.max_sessions_per_room:
            raise Refused(proto.ROOM_FULL, "this room holds its maximum of sessions")
        session = secrets.token_urlsafe(12)
        entry.sessions[session] = client
        self._sessions[session] = room
        return session, entry.host

    async def leave(self, session: str) -> Endpoint | None:
        room = self._sessions.pop(session, None)
        entry = self._rooms.get(room) if room is not None else None
        if entry is None:
            return None
        entry.sessions.pop(session, None)
        return entry.host

    async def host_drops(self, room: str, session: str) -> Endpoint | None:
        entry = self._rooms.get(room)
        if entry is None or session not in entry.sessions:
            return None
        self._sessions.pop(session, None)
        return entry.sessions.pop(session)

    async def peer_of(self, session: str, side: proto.Side, room: str | None) -> Endpoint | None:
        found = self._sessions.get(session)
        if found is None or (room is not None and found != room):
            return None
        entry = self._rooms[found]
        return entry.sessions.get(session) if side == "host" else entry.host

    async def counts(self) -> tuple[int, int]:
        return len(self._rooms), len(self._sessions)


class _Connection:
    """A WebSocket connection as an :class:`Endpoint`.

    Sends are bounded by ``send_timeout``: a peer that stops reading is cut off instead of
    stalling whoever relays to it (a host serves every session of its room from one loop).
    """

    def __init__(self, ws: ServerConnection, send_timeout: float) -> None:
        self.ws = ws
        self.send_timeout = send_timeout

    async def deliver(self, message: JSONObject) -> None:
        try:
            async with asyncio.timeout(self.send_timeout):
                await self.ws.send(proto.dumps(message))
        except ConnectionClosed:
            pass
        except TimeoutError:
            _log("refused", self.ws, reason="not reading (send timed out)")
            self.ws.transport.abort()

    async def drop(self, reason: str) -> None:
        with contextlib.suppress(ConnectionClosed, TimeoutError):
            async with asyncio.timeout(self.send_timeout):
                await self.ws.send(proto.dumps(proto.error(proto.HOST_LEFT, reason)))
                await self.ws.close(1000, reason[:120])


def _log(event: str, ws: ServerConnection, **fields: object) -> None:
    remote = ws.remote_address
    where = f"{remote[0]}:{remote[1]}" if isinstance(remote, tuple) else str(remote)
    extra = " ".join(f"{k}={json.dumps(v) if isinstance(v, str) else v}" for k, v in fields.items())
    logger.info("event=%s remote=%s %s", event, where, extra)


class RendezvousServer:
    """The rendezvous WebSocket server (see the module docstring)."""

    def __init__(
        self, config: RendezvousConfig | None = None, backend: RendezvousBackend | None = None
    ) -> None:
        self.config = config or RendezvousConfig()
        self.backend: RendezvousBackend = backend or MemoryBackend(
            self.config.max_rooms, self.config.max_sessions_per_room
        )
        self._host_digests = frozenset(proto.token_digest(t) for t in self.config.host_tokens)
        self._server: Server | None = None

    # ---------------------------------------------------------------- lifecycle

    async def __aenter__(self) -> RendezvousServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def start(self) -> None:
        config = self.config
        if not config.host_tokens:
            logger.warning("no host tokens configured: anyone may register a room")
        tls = None
        if config.tls_cert is not None and config.tls_key is not None:
            tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            tls.load_cert_chain(config.tls_cert, config.tls_key)
        self._server = await serve(
            self._handle,
            config.host,
            config.port,
            ssl=tls,
            max_size=config.max_message_size,
            process_request=self._process_request,
            server_header="mcp-webrtc-rendezvous",
            close_timeout=2,
        )
        logger.info("event=listening url=%s", self.url)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def serve_forever(self) -> None:
        assert self._server is not None
        await self._server.serve_forever()

    @property
    def port(self) -> int:
        assert self._server is not None
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    @property
    def url(self) -> str:
        scheme = "wss" if self.config.tls_cert else "ws"
        host = self.config.host if ":" not in self.config.host else f"[{self.config.host}]"
        return f"{scheme}://{host}:{self.port}/"

    # ---------------------------------------------------------------- HTTP

    def _origin_allowed(self, request: Request) -> bool:
        """Programs send no Origin; browsers must come from an allowed origin or from a
        page this server served itself (same origin: the inspector)."""
        origin = request.headers.get("Origin")
        if origin is None or origin in self.config.allowed_origins:
            return True
        scheme = "https" if self.config.tls_cert else "http"
        return origin == f"{scheme}://{request.headers.get('Host', '')}"

    async def _process_request(self, ws: ServerConnection, request: Request) -> Response | None:
        path = request.path.split("?", 1)[0]
        upgrade = "upgrade" in request.headers.get("Connection", "").lower()
        if path == "/healthz":
            rooms, sessions = await self.backend.counts()
            health = proto.dumps({"status": "ok", "rooms": rooms, "sessions": sessions})
            return _response(HTTPStatus.OK, "application/json", health.encode())
        if not upgrade:
            asset = _ASSETS.get(path)
            if asset is not None:
                name, content_type = asset
                body = resources.files("mcp_webrtc.assets").joinpath(name).read_bytes()
                return _response(HTTPStatus.OK, content_type, body)
            if path == "/favicon.ico":
                return _response(HTTPStatus.NO_CONTENT, "image/x-icon", b"")
            return _response(HTTPStatus.NOT_FOUND, "text/plain", b"not found\n")
        if not self._origin_allowed(request):
            _log("refused", ws, reason="origin not allowed", origin=request.headers.get("Origin"))
            return _response(HTTPStatus.FORBIDDEN, "text/plain", b"origin not allowed\n")
        return None

    # ---------------------------------------------------------------- WebSocket

    async def _handle(self, ws: ServerConnection) -> None:
        bucket = proto.TokenBucket(self.config.rate, self.config.burst)
        try:
            async with asyncio.timeout(self.config.hello_timeout):
                first = await ws.recv()
            bucket.allow(time.monotonic())
            hello = proto.parse_inbound(first)
        except TimeoutError:
            _log("refused", ws, reason="no register or join in time")
            await ws.close(proto.CLOSE_POLICY, "register or join first")
            return
        except ProtocolError as exc:
            _log("refused", ws, reason=str(exc))
            await self._refuse(ws, exc.code, str(exc))
            return
        except ConnectionClosed as exc:
            _log("refused", ws, reason=f"closed before hello ({exc.rcvd.code if exc.rcvd else ''})")
            return
        if isinstance(hello, proto.Register):
            await self._host(ws, hello, bucket)
        elif isinstance(hello, proto.Join):
            await self._client(ws, hello, bucket)
        else:
            await self._refuse(ws, proto.BAD_MESSAGE, "the first message must be register or join")

    async def _refuse(self, ws: ServerConnection, code: str, message: str) -> None:
        """Answer with the error and close. Unread messages (a flood) are drained meanwhile:
        with websockets' incoming queue full, the peer's close frame could not be read."""

        async def drain() -> None:
            with contextlib.suppress(ConnectionClosed):
                async for _ in ws:
                    pass

        with contextlib.suppress(ConnectionClosed):
            await ws.send(proto.dumps(proto.error(code, message)))
            async with asyncio.TaskGroup() as tg:
                draining = tg.create_task(drain())
                await ws.close(proto.CLOSE_POLICY, code)
                draining.cancel()

    async def _messages(self, ws: ServerConnection, bucket: proto.TokenBucket, who: str) -> Any:
        """Yield parsed messages until the connection ends; enforce the rate limit."""
        try:
            async for raw in ws:
                if not bucket.allow(time.monotonic()):
                    _log("refused", ws, reason="rate limit", who=who)
                    await self._refuse(ws, proto.RATE_LIMITED, "too many messages; slow down")
                    return
                try:
                    yield proto.parse_inbound(raw)
                except ProtocolError as exc:
                    await ws.send(proto.dumps(proto.error(exc.code, str(exc))))
        except ConnectionClosed as exc:
            if exc.rcvd is None and exc.sent is not None and exc.sent.code == proto.CLOSE_TOO_BIG:
                _log("refused", ws, reason="message too big", who=who)

    async def _host(self, ws: ServerConnection, hello: proto.Register, bucket: Any) -> None:
        if self._host_digests and not proto.token_in(hello.token, self._host_digests):
            _log("refused", ws, reason="bad host token", room=hello.room)
            await self._refuse(ws, proto.UNAUTHORIZED, "wrong host token")
            return
        me = _Connection(ws, self.config.send_timeout)
        try:
            await self.backend.register(hello.room, proto.token_digest(hello.client_token), me)
        except Refused as exc:
            _log("refused", ws, reason=exc.code, room=hello.room)
            await self._refuse(ws, exc.code, str(exc))
            return
        _log("register", ws, room=hello.room)
        try:
            await me.deliver(
                {
                    "type": "registered",
                    "room": hello.room,
                    "iceServers": self.config.ice_servers(f"host-{hello.room}"),
                }
            )
            async for message in self._messages(ws, bucket, "host"):
                if isinstance(message, proto.SignalMessage):
                    peer = None
                    if message.session is not None:
                        peer = await self.backend.peer_of(message.session, "host", hello.room)
                    if peer is None:
                        await me.deliver(
                            proto.error(
                                proto.UNKNOWN_SESSION, "no such session", session=message.session
                            )
                        )
                        continue
                    await peer.deliver({"type": "signal", "signal": message.signal})
                elif isinstance(message, proto.Leave) and message.session is not None:
                    client = await self.backend.host_drops(hello.room, message.session)
                    if client is not None:
                        _log("leave", ws, room=hello.room, session=message.session, by="host")
                        await client.drop("the host closed this session")
                else:
                    await me.deliver(proto.error(proto.BAD_MESSAGE, "unexpected message"))
        finally:
            clients = await self.backend.unregister(hello.room, me)
            _log("unregister", ws, room=hello.room, sessions=len(clients))
            async with asyncio.TaskGroup() as tg:  # concurrently: each bounded in time
                for client in clients:
                    tg.create_task(client.drop("the host left the room"))

    async def _client(self, ws: ServerConnection, hello: proto.Join, bucket: Any) -> None:
        me = _Connection(ws, self.config.send_timeout)
        try:
            session, host = await self.backend.join(hello.room, hello.token, me)
        except Refused as exc:
            _log("refused", ws, reason=exc.code, room=hello.room)
            await self._refuse(ws, exc.code, str(exc))
            return
        _log("join", ws, room=hello.room, session=session)
        try:
            await me.deliver(
                {
                    "type": "joined",
                    "session": session,
                    "iceServers": self.config.ice_servers(f"client-{session}"),
                }
            )
            await host.deliver({"type": "peer-joined", "session": session})
            async for message in self._messages(ws, bucket, "client"):
                if isinstance(message, proto.SignalMessage):
                    target = await self.backend.peer_of(session, "client", None)
                    if target is None:
                        break
                    await target.deliver(
                        {"type": "signal", "session": session, "signal": message.signal}
                    )
                elif isinstance(message, proto.Leave):
                    break
                else:
                    await me.deliver(proto.error(proto.BAD_MESSAGE, "unexpected message"))
        finally:
            host_left = await self.backend.leave(session)
            _log("leave", ws, room=hello.room, session=session)
            if host_left is not None:
                await host_left.deliver({"type": "peer-left", "session": session})


#: Plain HTTP GET paths served from the package's assets: the browser inspector and module.
_ASSETS = {
    "/": ("inspector.html", "text/html; charset=utf-8"),
    "/inspector": ("inspector.html", "text/html; charset=utf-8"),
    "/mcp-webrtc.js": ("mcp-webrtc.js", "text/javascript; charset=utf-8"),
}


def _response(status: HTTPStatus, content_type: str, body: bytes) -> Response:
    headers = Headers(
        [
            ("Content-Type", content_type),
            ("Content-Length", str(len(body))),
            ("Cache-Control", "no-store"),
        ]
    )
    return Response(status.value, status.phrase, headers, body)
