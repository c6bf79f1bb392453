"""Signaling through the rendezvous server (docs/protocol.md, §7).

:class:`WebSocketSignaling` is a client's signaling for one session: it joins a room and
relays signals to and from the room's host. :class:`RendezvousHost` is the host side: it
registers a room and yields one :class:`HostSession` (a :class:`Signaling`) per client
that joins.

Both expose ``ice_servers``: the STUN/TURN servers (with fresh TURN credentials) that the
rendezvous hands out; the transports add them to their own.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import ssl
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any

import anyio
from anyio.abc import TaskGroup
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus, InvalidURI

from ._core import rendezvous as proto
from ._core.rendezvous import JSONObject, rendezvous_urls
from ._logs import websockets_logger
from .exceptions import RendezvousRefused, SignalingError
from .options import IceServer

logger = logging.getLogger("mcp_webrtc.signaling")

#: WebSocket message limit on the peers' side (the rendezvous enforces its own).
MAX_SIGNAL_MESSAGE = 1024 * 1024


def parse_ice_servers(raw: object) -> tuple[IceServer, ...]:
    servers = []
    for item in raw if isinstance(raw, list) else []:
        if not isinstance(item, dict):
            continue
        urls = item.get("urls")
        url_tuple = (
            (urls,) if isinstance(urls, str) else tuple(u for u in urls or () if isinstance(u, str))
        )
        if not url_tuple:
            continue
        try:
            servers.append(IceServer(url_tuple, item.get("username"), item.get("credential")))
        except ValueError as exc:
            logger.warning("ignoring ICE server from the rendezvous: %s", exc)
    return tuple(servers)


async def _open(
    url: str, ssl_context: ssl.SSLContext | None, open_timeout: float
) -> ClientConnection:
    try:
        tls: ssl.SSLContext | bool | None = None
        if url.startswith("wss:"):  # the system's trust store unless a context is given
            tls = ssl_context if ssl_context is not None else True
        return await connect(
            url,
            ssl=tls,
            open_timeout=open_timeout,
            max_size=MAX_SIGNAL_MESSAGE,
            logger=websockets_logger("mcp_webrtc.signaling.websockets"),
        )
    except InvalidURI as exc:
        raise SignalingError(f"not a rendezvous URL: {url!r}") from exc
    except InvalidStatus as exc:
        status = exc.response.status_code
        raise SignalingError(f"rendezvous at {url} answered HTTP {status}") from exc
    except (OSError, TimeoutError) as exc:
        raise SignalingError(f"cannot reach the rendezvous at {url}: {exc}") from exc


async def _expect(ws: ClientConnection, wanted: str, answer_within: float) -> JSONObject:
    try:
        with anyio.fail_after(answer_within):
            reply = json.loads(await ws.recv())
    except ConnectionClosed as exc:
        raise SignalingError(f"the rendezvous closed the connection ({exc})") from exc
    except TimeoutError:
        raise SignalingError(f"no answer from the rendezvous within {answer_within:g} s") from None
    except (ValueError, RecursionError):
        raise SignalingError("the rendezvous answered something that is not JSON") from None
    if isinstance(reply, dict) and reply.get("type") == "error":
        raise RendezvousRefused(str(reply.get("code")), str(reply.get("message")))
    if not isinstance(reply, dict) or reply.get("type") != wanted:
        raise SignalingError(f"unexpected answer from the rendezvous: {reply!r:.200}")
    return reply


async def _hello(
    url: str,
    ssl_context: ssl.SSLContext | None,
    open_timeout: float,
    hello: JSONObject,
    wanted: str,
) -> tuple[ClientConnection, JSONObject]:
    """Open the connection, send ``hello`` (join or register), expect ``wanted``."""
    ws = await _open(url, ssl_context, open_timeout)
    try:
        await ws.send(proto.dumps(hello))
        return ws, await _expect(ws, wanted, open_timeout)
    except BaseException:
        await ws.close()
        raise


class _RendezvousConnection:
    """What a client and a host connection to the rendezvous have in common: with several
    URLs, the first that answers is used; an unreachable one, or one answering
    ``backend-unavailable``, makes way for the next."""

    def __init__(
        self,
        url: str | Sequence[str],
        room: str,
        token: str,
        *,
        ssl_context: ssl.SSLContext | None = None,
        open_timeout: float = 10.0,
    ) -> None:
        self.urls = rendezvous_urls(url)
        #: The URL in use (the first until connected).
        self.url = self.urls[0]
        self.room = room
        self._token = token
        self._ssl = ssl_context
        self._open_timeout = open_timeout
        self._ws: ClientConnection | None = None
        #: STUN/TURN servers (with fresh TURN credentials) the rendezvous handed out.
        self.ice_servers: tuple[IceServer, ...] = ()

    async def _hello(self, hello: JSONObject, wanted: str) -> JSONObject:
        failure: SignalingError | None = None
        for url in self.urls:
            try:
                self._ws, reply = await _hello(url, self._ssl, self._open_timeout, hello, wanted)
            except RendezvousRefused as exc:
                if exc.code != proto.BACKEND_UNAVAILABLE:
                    raise
                failure = exc
            except SignalingError as exc:
                failure = exc
            else:
                self.url = url
                self.ice_servers = parse_ice_servers(reply.get("iceServers"))
                return reply
            if len(self.urls) > 1:
                logger.info("rendezvous at %s: %s; trying the next", url, failure)
        assert failure is not None
        raise failure


class WebSocketSignaling(_RendezvousConnection):
    """A client's signaling for one session through the rendezvous at ``url``."""

    def __init__(self, url: str | Sequence[str], room: str, token: str, **kwargs: Any) -> None:
        super().__init__(url, room, token, **kwargs)
        self._pending: list[JSONObject] = []
        self.session: str | None = None

    async def connect(self) -> None:
        joined = await self._hello(
            {"type": "join", "room": self.room, "token": self._token}, "joined"
        )
        self.session = str(joined.get("session"))
        pending, self._pending = self._pending, []
        for signal in pending:
            await self.send(signal)

    async def send(self, signal: JSONObject) -> None:
        if self._ws is None:
            self._pending.append(signal)
            return
        try:
            await self._ws.send(proto.dumps({"type": "signal", "signal": signal}))
        except ConnectionClosed as exc:
            raise SignalingError(f"the rendezvous connection closed ({exc})") from exc

    async def receive(self) -> JSONObject | None:
        if self._ws is None:
            raise SignalingError("not connected")
        while True:
            try:
                raw = await self._ws.recv()
            except ConnectionClosed:
                return None
            try:
                message = json.loads(raw)
            except (ValueError, RecursionError):
                logger.warning("ignoring a rendezvous message that is not JSON")
                continue
            kind = message.get("type") if isinstance(message, dict) else None
            if kind == "signal" and isinstance(message.get("signal"), dict):
                signal: JSONObject = message["signal"]
                return signal
            if kind == "error":
                if message.get("code") == proto.HOST_LEFT:
                    raise SignalingError(f"the host left the room {self.room!r}")
                raise RendezvousRefused(str(message.get("code")), str(message.get("message")))
            logger.warning("ignoring unknown rendezvous message: %.200r", raw)

    async def close(self) -> None:
        ws, self._ws = self._ws, None
        if ws is not None:
            with contextlib.suppress(ConnectionClosed):
                await ws.send(proto.dumps({"type": "leave"}))
            await ws.close()


class HostSession:
    """The host's signaling for one joined client (created by :class:`RendezvousHost`)."""

    def __init__(
        self,
        host: RendezvousHost,
        session: str,
        ice_servers: tuple[IceServer, ...],
        label: str | None = None,
        share: Mapping[str, int] | None = None,
    ) -> None:
        self.host = host
        self.session = session
        #: This host's share of the room's pool when the client joined: ``hosts``,
        #: ``sessions`` (this host's, the new one included), ``roomSessions``; or ``None``.
        self.share = dict(share) if share is not None else None
        #: The label of the client token the client joined with (a labeled one), if any.
        self.label = label
        self._send, self._receive = anyio.create_memory_object_stream[JSONObject](math.inf)
        #: STUN/TURN servers for this session (fresh TURN credentials from ``peer-joined``).
        self.ice_servers = ice_servers

    def _deliver(self, signal: JSONObject) -> None:
        with contextlib.suppress(anyio.ClosedResourceError, anyio.BrokenResourceError):
            self._send.send_nowait(signal)

    def _ended(self) -> None:
        self._send.close()

    async def connect(self) -> None:
        return None

    async def send(self, signal: JSONObject) -> None:
        await self.host._send({"type": "signal", "session": self.session, "signal": signal})

    async def receive(self) -> JSONObject | None:
        try:
            return await self._receive.receive()
        except (anyio.EndOfStream, anyio.ClosedResourceError):
            return None

    async def close(self) -> None:
        self._ended()
        self.host._forget(self.session)
        with contextlib.suppress(SignalingError):
            await self.host._send({"type": "leave", "session": self.session})


class RendezvousHost(_RendezvousConnection):
    """Registers ``room`` at the rendezvous and yields a :class:`HostSession` per client.

    ``async with RendezvousHost(...) as host: async for session in host.sessions(): ...``
    Entering raises :class:`RendezvousRefused` (wrong host token, room taken...) or
    :class:`SignalingError` (unreachable). :meth:`sessions` ends when the rendezvous
    connection is lost; sessions already handed out keep working.
    """

    def __init__(
        self,
        url: str | Sequence[str],
        room: str,
        token: str,
        client_token: str,
        *,
        labeled_tokens: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(url, room, token, **kwargs)
        self._client_token = client_token
        self._labeled_tokens = dict(labeled_tokens or {})
        self._sessions: dict[str, HostSession] = {}
        self._new: MemoryObjectSendStream[HostSession] | None = None
        self._new_receive: MemoryObjectReceiveStream[HostSession] | None = None
        self._tg: TaskGroup | None = None

    async def __aenter__(self) -> RendezvousHost:
        hello: JSONObject = {
            "type": "register",
            "room": self.room,
            "token": self._token,
            "clientToken": self._client_token,
        }
        if self._labeled_tokens:
            hello["clientTokens"] = self._labeled_tokens
        await self._hello(hello, "registered")
        self._new, self._new_receive = anyio.create_memory_object_stream[HostSession](math.inf)
        self._tg = anyio.create_task_group()
        await self._tg.__aenter__()
        self._tg.start_soon(self._reader)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        assert self._tg is not None
        self._tg.cancel_scope.cancel()
        try:
            with anyio.CancelScope(shield=True), anyio.move_on_after(2):
                if self._ws is not None:
                    await self._ws.close()
            for session in list(self._sessions.values()):
                session._ended()
        finally:
            # The caller's exception propagates as it is; only our reader's would be grouped.
            await self._tg.__aexit__(None, None, None)
        return None

    def sessions(self) -> MemoryObjectReceiveStream[HostSession]:
        """The sessions of clients as they join; ends when the rendezvous connection does."""
        assert self._new_receive is not None
        return self._new_receive

    async def _send(self, message: JSONObject) -> None:
        if self._ws is None:
            raise SignalingError("not registered at the rendezvous")
        try:
            await self._ws.send(proto.dumps(message))
        except ConnectionClosed as exc:
            raise SignalingError(f"the rendezvous connection closed ({exc})") from exc

    def _forget(self, session: str) -> None:
        self._sessions.pop(session, None)

    async def _reader(self) -> None:
        assert self._ws is not None
        assert self._new is not None
        try:
            async for raw in self._ws:
                self._dispatch(raw)
        except ConnectionClosed:
            pass
        finally:
            logger.info("rendezvous connection for room %r ended", self.room)
            self._new.close()

    def _dispatch(self, raw: str | bytes) -> None:
        assert self._new is not None
        try:
            message = json.loads(raw)
        except (ValueError, RecursionError):
            logger.warning("ignoring non-JSON rendezvous message")
            return
        kind = message.get("type") if isinstance(message, dict) else None
        session_id = message.get("session") if isinstance(message, dict) else None
        if kind == "peer-joined" and isinstance(session_id, str):
            fresh = message.get("iceServers")
            servers = parse_ice_servers(fresh) if fresh is not None else self.ice_servers
            label, share = message.get("label"), message.get("share")
            session = HostSession(
                self,
                session_id,
                servers,
                label if isinstance(label, str) else None,
                share if isinstance(share, dict) else None,
            )
            self._sessions[session_id] = session
            self._new.send_nowait(session)
        elif kind == "signal" and isinstance(session_id, str):
            target = self._sessions.get(session_id)
            if target is not None and isinstance(message.get("signal"), dict):
                target._deliver(message["signal"])
        elif kind == "peer-left" and isinstance(session_id, str):
            gone = self._sessions.pop(session_id, None)
            if gone is not None:
                gone._ended()
        elif kind == "error":
            logger.warning("rendezvous: %s (%s)", message.get("message"), message.get("code"))
            if isinstance(session_id, str) and message.get("code") != proto.UNKNOWN_SESSION:
                ended = self._sessions.pop(session_id, None)  # e.g. rate-limited
                if ended is not None:
                    ended._ended()
        else:
            logger.warning("ignoring unknown rendezvous message: %.200r", raw)


__all__ = ["HostSession", "RendezvousHost", "RendezvousRefused", "WebSocketSignaling"]
