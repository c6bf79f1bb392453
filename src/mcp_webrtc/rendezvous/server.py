"""The rendezvous WebSocket server (docs/protocol.md, §7)."""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from collections import OrderedDict
from collections.abc import AsyncGenerator
from http import HTTPStatus
from importlib import resources
from types import TracebackType

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from .._core import rendezvous as proto
from .._core.ratelimit import TokenBucket
from .._core.rendezvous import JSONObject
from .._logs import websockets_logger
from ..exceptions import ProtocolError, RendezvousRefused
from .backend import MemoryBackend, RendezvousBackend
from .config import RendezvousConfig
from .connection import PeerConnection, log_event

logger = logging.getLogger("mcp_webrtc.rendezvous")


class HostLimiter:
    """A host's rate budget: one token bucket per session it was told of, one for itself.

    The host's one connection carries the signaling of every session, so its budget grows
    with them. A message naming a session the host was told of (``peer-joined``), live or
    ended, is charged to that session: over budget, a live session is refused (the caller
    ends it), an ended one slows the host down. Anything else (made-up sessions, malformed
    messages) is charged to the host's own bucket and only ever slows it down. A host is
    never disconnected for its rate.
    """

    def __init__(self, config: RendezvousConfig) -> None:
        self._rate, self._burst = config.rate, config.burst
        self._own = TokenBucket(config.rate, config.burst)
        self._sessions: OrderedDict[str, TokenBucket] = OrderedDict()
        self._max = 2 * config.max_sessions_per_room  # ended ones the host never left

    def saw(self, message: JSONObject) -> None:
        """Observe what is delivered to the host: each ``peer-joined`` opens a budget."""
        if message.get("type") == "peer-joined":
            self._sessions[message["session"]] = TokenBucket(self._rate, self._burst)
            while len(self._sessions) > self._max:
                self._sessions.popitem(last=False)

    async def admit(self, session: str | None, *, live: bool) -> bool:
        """Charge one message; ``False`` means: refuse that (live) session."""
        bucket = self._sessions.get(session) if session is not None else None
        if bucket is None or not bucket.allow(time.monotonic()):
            if bucket is not None and live:
                return False
            await self.pace()
        return True

    def forget(self, session: str) -> None:
        self._sessions.pop(session, None)

    async def pace(self) -> None:
        """Wait until the host's own budget allows one more message."""
        while not self._own.allow(time.monotonic()):  # noqa: ASYNC110 - a clock, no event
            await asyncio.sleep(self._own.delay())


class RendezvousServer:
    """The rendezvous: hosts register rooms, clients join them, signals are relayed.

    Run it with ``mcp-webrtc signal`` or, in a program::

        async with RendezvousServer(RendezvousConfig(port=0, host_tokens=("s",))) as server:
            print(server.url)
            await server.serve_forever()
    """

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
            logger=websockets_logger("mcp_webrtc.rendezvous.websockets"),
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
        origin = request.headers.get("Origin")
        if not self.config.origin_allowed(origin):
            log_event("refused", ws, reason="origin not allowed", origin=proto.short(origin, 100))
            return _response(HTTPStatus.FORBIDDEN, "text/plain", b"origin not allowed\n")
        return None

    # ---------------------------------------------------------------- WebSocket

    async def _handle(self, ws: ServerConnection) -> None:
        bucket = TokenBucket(self.config.rate, self.config.burst)
        try:
            async with asyncio.timeout(self.config.hello_timeout):
                first = await ws.recv()
            bucket.allow(time.monotonic())
            hello = proto.parse_inbound(first)
        except TimeoutError:
            log_event("refused", ws, reason="no register or join in time")
            await ws.close(proto.CLOSE_POLICY, "register or join first")
            return
        except ProtocolError as exc:
            log_event("refused", ws, reason=str(exc))
            await self._refuse(PeerConnection(ws, self.config), exc.code, str(exc))
            return
        except ConnectionClosed as exc:
            code = exc.rcvd.code if exc.rcvd else ""
            log_event("refused", ws, reason=f"closed before hello ({code})")
            return
        if isinstance(hello, proto.Register):
            await self._host(ws, hello)
        elif isinstance(hello, proto.Join):
            await self._client(ws, hello, bucket)
        else:
            message = "the first message must be register or join"
            await self._refuse(PeerConnection(ws, self.config), proto.BAD_MESSAGE, message)

    async def _refuse(self, me: PeerConnection, code: str, message: str) -> None:
        """Answer with the error and close (1008); a flood meanwhile is drained."""
        me.put(proto.error(code, message))
        me.close_when_flushed(proto.CLOSE_POLICY, code)
        me.start()
        await me.finish()

    async def _messages(
        self, me: PeerConnection, limiter: HostLimiter | None = None
    ) -> AsyncGenerator[proto.Inbound, None]:
        """Yield parsed messages until the connection ends; answer malformed ones (a host
        sending them is paced by its own budget)."""
        try:
            async for raw in me.ws:
                try:
                    yield proto.parse_inbound(raw)
                except ProtocolError as exc:
                    if limiter is not None:
                        await limiter.pace()
                    me.put(proto.error(exc.code, str(exc)))
        except ConnectionClosed as exc:
            if exc.rcvd is None and exc.sent is not None and exc.sent.code == proto.CLOSE_TOO_BIG:
                log_event("refused", me.ws, reason="message too big")

    async def _host(self, ws: ServerConnection, hello: proto.Register) -> None:
        limiter = HostLimiter(self.config)
        me = PeerConnection(ws, self.config, observe=limiter.saw)
        if self._host_digests and not proto.token_in(hello.token, self._host_digests):
            log_event("refused", ws, reason="bad host token", room=hello.room)
            await self._refuse(me, proto.UNAUTHORIZED, "wrong host token")
            return
        try:
            labeled = tuple((label, proto.token_digest(t)) for label, t in hello.labeled_tokens)
            digest = proto.token_digest(hello.client_token)
            await self.backend.register(hello.room, digest, me, labeled)
        except RendezvousRefused as exc:
            log_event("refused", ws, reason=exc.code, room=hello.room)
            await self._refuse(me, exc.code, exc.message)
            return
        log_event("register", ws, room=hello.room)
        me.start()
        try:
            iceservers = self.config.ice_servers(f"host-{hello.room}")
            me.put({"type": "registered", "room": hello.room, "iceServers": iceservers})
            await self._relay_host(me, hello.room, limiter)
        finally:
            clients = await self.backend.unregister(hello.room, me)
            log_event("unregister", ws, room=hello.room, sessions=len(clients))
            for client in clients:  # never waits: each has its own queue
                await client.drop(proto.HOST_LEFT, "the host left the room")
            await me.finish()

    async def _relay_host(self, me: PeerConnection, room: str, limiter: HostLimiter) -> None:
        async for message in self._messages(me, limiter):
            session = getattr(message, "session", None)
            if isinstance(message, proto.SignalMessage) and session is not None:
                peer = await self.backend.peer_of(session, "host", room)
                if not await limiter.admit(session, live=peer is not None):
                    await self._refuse_session(me, room, session, limiter)
                elif peer is None:
                    me.put(proto.error(proto.UNKNOWN_SESSION, "no such session", session=session))
                else:
                    await peer.deliver({"type": "signal", "signal": message.signal})
            elif isinstance(message, proto.Leave) and session is not None:
                await limiter.admit(session, live=False)
                limiter.forget(session)
                client = await self.backend.host_drops(room, session)
                if client is not None:
                    log_event("leave", me.ws, room=room, session=session, by="host")
                    await client.drop(proto.HOST_LEFT, "the host closed this session")
            else:
                await limiter.pace()
                me.put(proto.error(proto.BAD_MESSAGE, "unexpected message"))

    async def _refuse_session(
        self, me: PeerConnection, room: str, session: str, limiter: HostLimiter
    ) -> None:
        limiter.forget(session)
        client = await self.backend.host_drops(room, session)
        log_event("refused", me.ws, reason="rate limit", who="host", room=room, session=session)
        if client is not None:
            await client.drop(proto.RATE_LIMITED, "the host sent too many messages")
        text = "too many messages for this session; it was ended"
        me.put(proto.error(proto.RATE_LIMITED, text, session=session))

    async def _client(self, ws: ServerConnection, hello: proto.Join, bucket: TokenBucket) -> None:
        me = PeerConnection(ws, self.config)
        try:
            session, host, label = await self.backend.join(hello.room, hello.token, me)
        except RendezvousRefused as exc:
            log_event("refused", ws, reason=exc.code, room=hello.room)
            await self._refuse(me, exc.code, exc.message)
            return
        log_event("join", ws, room=hello.room, session=session)
        me.start()
        try:
            iceservers = self.config.ice_servers(f"client-{session}")
            me.put({"type": "joined", "session": session, "iceServers": iceservers})
            fresh = self.config.ice_servers(f"host-{hello.room}")  # never expired: per session
            joined = {"type": "peer-joined", "session": session, "iceServers": fresh}
            await host.deliver(joined if label is None else {**joined, "label": label})
            messages = self._messages(me)
            async for message in messages:
                if not bucket.allow(time.monotonic()):
                    log_event("refused", ws, reason="rate limit", who="client")
                    me.put(proto.error(proto.RATE_LIMITED, "too many messages; slow down"))
                    me.close_when_flushed(proto.CLOSE_POLICY, proto.RATE_LIMITED)
                    break
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
                    me.put(proto.error(proto.BAD_MESSAGE, "unexpected message"))
            await messages.aclose()
        finally:
            host_left = await self.backend.leave(session)
            log_event("leave", ws, room=hello.room, session=session)
            if host_left is not None:
                await host_left.deliver({"type": "peer-left", "session": session})
            await me.finish()


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


__all__ = ["HostLimiter", "RendezvousServer"]
