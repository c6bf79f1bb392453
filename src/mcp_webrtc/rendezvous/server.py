"""The rendezvous WebSocket server (docs/protocol.md, §7)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import time
from collections.abc import AsyncGenerator, Awaitable
from http import HTTPStatus
from importlib import resources
from types import TracebackType

from prometheus_client import CONTENT_TYPE_LATEST
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from .._core import rendezvous as proto
from .._core.ratelimit import TokenBucket
from .._core.rendezvous import JSONObject
from .._logs import websockets_logger
from ..exceptions import ProtocolError, RendezvousRefused
from .backend import Endpoint, RendezvousBackend
from .config import RendezvousConfig
from .connection import PeerConnection, log_event
from .http import ASSETS, response
from .limits import HostLimiter
from .memory import MemoryBackend
from .metrics import RendezvousMetrics

logger = logging.getLogger("mcp_webrtc.rendezvous")


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
        self.config = config = config or RendezvousConfig()
        self.backend: RendezvousBackend = backend or _backend_for(config)
        #: This instance's Prometheus metrics (``GET /metrics``).
        self.metrics = RendezvousMetrics(self.backend.instance, self.backend.kind)
        self._host_digests = frozenset(proto.token_digest(t) for t in config.host_tokens)
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
        await self.backend.start()
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
            await self.backend.close()

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
            return await self._health()
        if path == "/metrics" and self.config.metrics and not upgrade:
            body = await self.metrics.exposition(self.backend)
            return response(HTTPStatus.OK, CONTENT_TYPE_LATEST, body)
        if not upgrade:
            asset = ASSETS.get(path)
            if asset is not None:
                name, content_type = asset
                body = resources.files("mcp_webrtc.assets").joinpath(*name.split("/")).read_bytes()
                return response(HTTPStatus.OK, content_type, body)
            if path == "/favicon.ico":
                return response(HTTPStatus.NO_CONTENT, "image/x-icon", b"")
            return response(HTTPStatus.NOT_FOUND, "text/plain", b"not found\n")
        origin = request.headers.get("Origin")
        if not self.config.origin_allowed(origin):
            log_event("refused", ws, reason="origin not allowed", origin=proto.short(origin, 100))
            return response(HTTPStatus.FORBIDDEN, "text/plain", b"origin not allowed\n")
        return None

    async def _health(self) -> Response:
        """200 with counts while the backend works; 503 (take me out) when it does not."""
        backend = self.backend
        health: JSONObject = {"status": "ok", "backend": backend.kind, "instance": backend.instance}
        status = HTTPStatus.OK
        try:
            counts = await self.metrics.timed("counts", backend.counts())
        except RendezvousRefused:
            counts = None
        if counts is None or not await backend.healthy():
            health["status"], status = "backend-unavailable", HTTPStatus.SERVICE_UNAVAILABLE
        else:
            health.update(counts._asdict())
        return response(status, "application/json", proto.dumps(health).encode())

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
    ) -> AsyncGenerator[tuple[proto.Inbound, int], None]:
        """Yield parsed messages, each with its size as received, until the connection
        ends; answer malformed ones (a host sending them is paced by its own budget)."""
        try:
            async for raw in me.ws:
                try:
                    yield proto.parse_inbound(raw), len(raw)
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
            await self._refused(me, hello.room, proto.UNAUTHORIZED, "wrong host token")
            return
        try:
            keys = proto.RoomKeys.of(hello)
            pool = await self.metrics.timed("register", self.backend.register(hello.room, keys, me))
        except RendezvousRefused as exc:
            await self._refused(me, hello.room, exc.code, exc.message)
            return
        log_event("register", ws, room=hello.room, pool=pool)
        self.metrics.registers.inc()
        connected = self.metrics.connected.labels("host")
        connected.inc()
        me.start()
        try:
            iceservers = self.config.ice_servers(f"host-{hello.room}")
            me.put({"type": "registered", "room": hello.room, "iceServers": iceservers})
            await self._relay_host(me, hello.room, limiter)
        finally:
            connected.dec()
            try:
                clients = await self.metrics.timed(
                    "unregister", self.backend.unregister(hello.room, me)
                )
            except RendezvousRefused:
                clients = []  # the backend ends them once its store answers again
            log_event("unregister", ws, room=hello.room, sessions=len(clients))
            for client in clients:  # never waits: each has its own queue
                await _quietly(client.drop(proto.HOST_LEFT, "the host left the room"))
            await me.finish()

    async def _refused(self, me: PeerConnection, room: str, code: str, message: str) -> None:
        log_event("refused", me.ws, reason=code, detail=message, room=room)
        self.metrics.refusals.labels(code).inc()
        await self._refuse(me, code, message)

    async def _relay_host(self, me: PeerConnection, room: str, limiter: HostLimiter) -> None:
        backend, timed = self.backend, self.metrics.timed
        async for message, size in self._messages(me, limiter):
            session = getattr(message, "session", None)
            if isinstance(message, proto.SignalMessage) and session is not None:
                try:
                    peer = await timed("peer_of", backend.peer_of(session, me))
                except RendezvousRefused as exc:
                    me.put(proto.error(exc.code, exc.message, session=session))
                    continue
                if not await limiter.admit(session, live=peer is not None):
                    await self._refuse_session(me, room, session, limiter)
                elif peer is None:
                    me.put(proto.error(proto.UNKNOWN_SESSION, "no such session", session=session))
                else:
                    signal = {"type": "signal", "signal": message.signal}
                    await self._relay(me, peer, signal, "host", session, size)
            elif isinstance(message, proto.Leave) and session is not None:
                await limiter.admit(session, live=False)
                limiter.forget(session)
                client = await self._host_drops(session, me)
                if client is not None:
                    log_event("leave", me.ws, room=room, session=session, by="host")
                    await _quietly(client.drop(proto.HOST_LEFT, "the host closed this session"))
            else:
                await limiter.pace()
                me.put(proto.error(proto.BAD_MESSAGE, "unexpected message"))

    async def _relay(
        self,
        me: PeerConnection,
        peer: Endpoint,
        message: JSONObject,
        by: str,
        session: str,
        size: int,
    ) -> None:
        """Relay one signal (``size``: as received); a sender whose signal could not be
        passed on is told why."""
        try:
            await peer.deliver(message)
        except RendezvousRefused as exc:
            extra = {"session": session} if by == "host" else {}
            me.put(proto.error(exc.code, exc.message, **extra))
            return
        self.metrics.signals.labels(by).inc()
        self.metrics.signal_bytes.inc(size)

    async def _host_drops(self, session: str, me: PeerConnection) -> Endpoint | None:
        try:
            return await self.metrics.timed("host_drops", self.backend.host_drops(session, me))
        except RendezvousRefused:
            return None  # the session ends with its client, or with this instance

    async def _refuse_session(
        self, me: PeerConnection, room: str, session: str, limiter: HostLimiter
    ) -> None:
        limiter.forget(session)
        client = await self._host_drops(session, me)
        log_event("refused", me.ws, reason="rate limit", who="host", room=room, session=session)
        self.metrics.rate_limited.labels("host").inc()
        if client is not None:
            await _quietly(client.drop(proto.RATE_LIMITED, "the host sent too many messages"))
        text = "too many messages for this session; it was ended"
        me.put(proto.error(proto.RATE_LIMITED, text, session=session))

    async def _client(self, ws: ServerConnection, hello: proto.Join, bucket: TokenBucket) -> None:
        me = PeerConnection(ws, self.config)
        try:
            joined = await self.metrics.timed(
                "join", self.backend.join(hello.room, hello.token, me)
            )
        except RendezvousRefused as exc:
            await self._refused(me, hello.room, exc.code, exc.message)
            return
        session = joined.session
        log_event("join", ws, room=hello.room, session=session, hosts=joined.share.hosts)
        self.metrics.joins.inc()
        connected = self.metrics.connected.labels("client")
        connected.inc()
        me.start()
        try:
            iceservers = self.config.ice_servers(f"client-{session}")
            me.put({"type": "joined", "session": session, "iceServers": iceservers})
            fresh = self.config.ice_servers(f"host-{hello.room}")  # never expired: per session
            told: JSONObject = {"type": "peer-joined", "session": session, "iceServers": fresh}
            if joined.label is not None:
                told["label"] = joined.label
            try:
                await joined.host.deliver({**told, "share": joined.share.as_json()})
            except RendezvousRefused as exc:
                me.put(proto.error(exc.code, exc.message))
                me.close_when_flushed(proto.CLOSE_POLICY, exc.code)
                return
            await self._relay_client(me, session, bucket)
        finally:
            connected.dec()
            try:
                host = await self.metrics.timed("leave", self.backend.leave(session, me))
            except RendezvousRefused:
                host = None  # the backend ends it once its store answers again
            log_event("leave", ws, room=hello.room, session=session)
            if host is not None:
                await _quietly(host.deliver({"type": "peer-left", "session": session}))
            await me.finish()

    async def _relay_client(self, me: PeerConnection, session: str, bucket: TokenBucket) -> None:
        messages = self._messages(me)
        async for message, size in messages:
            if not bucket.allow(time.monotonic()):
                log_event("refused", me.ws, reason="rate limit", who="client")
                self.metrics.rate_limited.labels("client").inc()
                me.put(proto.error(proto.RATE_LIMITED, "too many messages; slow down"))
                me.close_when_flushed(proto.CLOSE_POLICY, proto.RATE_LIMITED)
                break
            if isinstance(message, proto.SignalMessage):
                try:
                    target = await self.metrics.timed("peer_of", self.backend.peer_of(session, me))
                except RendezvousRefused as exc:
                    me.put(proto.error(exc.code, exc.message))
                    continue
                if target is None:
                    break
                signal = {"type": "signal", "session": session, "signal": message.signal}
                await self._relay(me, target, signal, "client", session, size)
            elif isinstance(message, proto.Leave):
                break
            else:
                me.put(proto.error(proto.BAD_MESSAGE, "unexpected message"))
        await messages.aclose()


async def _quietly(call: Awaitable[None]) -> None:
    """Tell a peer something that may fail to arrive (the shared store unreachable)."""
    with contextlib.suppress(RendezvousRefused):
        await call


def _backend_for(config: RendezvousConfig) -> RendezvousBackend:
    if config.redis_url is None:
        return MemoryBackend(config.max_rooms, config.max_sessions_per_room)
    from .redis_backend import RedisBackend  # the redis package is an extra

    return RedisBackend(config)


__all__ = ["HostLimiter", "RendezvousServer"]
