"""Serving many peers through a rendezvous, and connecting to one.

``serve(target, url, room=..., token=..., client_token=...)`` registers ``room`` at the
rendezvous and gives every client that joins its own WebRTC peer connection and its own
MCP session, concurrently, up to ``max_sessions``. ``target`` is an MCP server object
(``MCPServer``, ``FastMCP``, low-level ``Server``), a
:class:`~mcp_webrtc.stdio_server.StdioServer` (one stdio MCP server process per peer, its
JSON-RPC passed through), or a session handler: an async callable taking ``(read_stream,
write_stream)`` of SDK messages. If the rendezvous connection drops, established sessions
go on and ``serve`` registers again (with backoff).

Cancelling ``serve`` (``mcp-webrtc serve`` on SIGTERM or SIGINT) first ends every session,
each saying bye to its peer through the rendezvous, and only then leaves the rendezvous;
it returns within ``options.close_timeout`` and a second.

``connect(url, room=..., token=...)`` returns a client transport for ``mcp.Client`` or
``ClientSession``.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping, Sequence

import anyio
from anyio.abc import TaskGroup, TaskStatus

from ._compat import find_lowlevel_server
from ._core.policy import Gate
from ._core.rendezvous import rendezvous_urls
from .access import Access, gated
from .bridges import SessionHandler, bridge, stdio_command_handler
from .exceptions import ConnectError, MCPWebRTCError, RendezvousRefused, SignalingError
from .info import ConnectionInfo
from .options import WebRTCOptions
from .peer import DataChannelPeer
from .serve_metrics import ServeMetrics
from .server import run_server
from .stdio_server import StdioServer
from .transport import WebRTCClientTransport, WebRTCServerTransport
from .websocket_signaling import HostSession, RendezvousHost, WebSocketSignaling

logger = logging.getLogger("mcp_webrtc.serve")

#: Default of ``serve(max_sessions=...)``.
MAX_SESSIONS = 100
#: Refusals that registering again cannot fix.
_FATAL = {"unauthorized", "bad-message", "too-many-rooms"}


def connect(
    url: str | Sequence[str], *, room: str, token: str, options: WebRTCOptions | None = None
) -> WebRTCClientTransport:
    """A client transport that joins ``room`` at the rendezvous ``url`` with ``token``
    (several URLs: the first that answers)."""
    return WebRTCClientTransport(WebSocketSignaling(url, room, token), options)


async def _one_session(
    target: object,
    session: HostSession,
    options: WebRTCOptions,
    access: Access,
    metrics: ServeMetrics | None,
) -> None:
    transport = WebRTCServerTransport(session, options)

    def connected(info: ConnectionInfo) -> Gate | None:
        """Log the session as connected; the gate that its peer's access asks for."""
        _log_connected(session, info)
        if metrics is not None:
            metrics.connected.labels(info.engine, info.remote_candidate_type or "").inc()
        return access.gate(str(session.session), info, session.label)

    def gate() -> Gate | None:
        return connected(transport.connection_info())

    try:
        if find_lowlevel_server(target) is not None:
            await run_server(target, gated(transport, gate))
        elif isinstance(target, StdioServer):  # JSON-RPC passed through unless gated
            initiator = True if options.initiator is None else options.initiator
            async with DataChannelPeer(session, options, initiator=initiator) as peer:
                await target.serve_peer(peer, connected(peer.info()))
        else:
            handler: SessionHandler = target  # type: ignore[assignment]
            async with gated(transport, gate) as (read, write):
                await handler(read, write)
    except ConnectError as exc:
        logger.warning("session %s did not connect: %s", session.session, exc)
    except MCPWebRTCError as exc:
        logger.warning("session %s ended: %s", session.session, exc)
    except Exception:
        logger.exception("session %s failed", session.session)
    finally:
        logger.info("session %s closed", session.session)


def _log_connected(session: HostSession, info: ConnectionInfo) -> None:
    logger.info(
        "session %s connected over %s (%s <-> %s)",
        session.session,
        info.engine,
        info.local_candidate_type,
        info.remote_candidate_type,
    )


class _Sessions:
    """The sessions of one ``serve``: started in one task group, counted, ended together."""

    def __init__(
        self,
        tg: TaskGroup,
        target: object,
        options: WebRTCOptions,
        limit: int,
        access: Access,
        metrics: ServeMetrics | None,
    ) -> None:
        self._tg, self._target, self._options, self._limit = tg, target, options, limit
        self._metrics = metrics
        if metrics is not None:
            access = dataclasses.replace(access, metrics=metrics.observe)
        self._access = access
        self.active = 0
        self._idle = anyio.Event()
        self._idle.set()

    async def start(self, session: HostSession) -> None:
        if self.active >= self._limit:
            logger.warning("refusing session %s: server full", session.session)
            await session.send({"type": "bye", "reason": "server full"})
            await session.close()
            return
        self.active += 1
        self._idle = anyio.Event()
        self._tg.start_soon(self._run, session)

    async def _run(self, session: HostSession) -> None:
        if self._metrics is not None:
            self._metrics.sessions.inc()
        try:
            await _one_session(self._target, session, self._options, self._access, self._metrics)
        finally:
            if self._metrics is not None:
                self._metrics.sessions.dec()
            self.active -= 1
            if self.active == 0:
                self._idle.set()

    async def end_all(self) -> None:
        """End every session (each says bye) and wait for them, bounded."""
        self._tg.cancel_scope.cancel()
        with anyio.move_on_after(self._options.close_timeout + 1.0):
            await self._idle.wait()


async def serve(
    target: object,
    url: str | Sequence[str],
    *,
    room: str,
    token: str,
    client_token: str,
    options: WebRTCOptions | None = None,
    max_sessions: int = MAX_SESSIONS,
    access: Access | None = None,
    labeled_tokens: Mapping[str, str] | None = None,
    metrics: ServeMetrics | None = None,
    task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``target`` to every client joining ``room`` (see the module docstring).
    ``access``: what each peer may use, and the audit log (:class:`~mcp_webrtc.access.Access`);
    ``labeled_tokens``: further client tokens by label (the label names a peer to ``access``);
    ``metrics``: counts sessions and requests (:class:`~mcp_webrtc.serve_metrics.ServeMetrics`).

    ``url``: the rendezvous, or several (a sequence, or comma-separated): ``serve``
    registers at the first that answers and, when that connection is lost, tries the
    next one first (instances sharing a Redis backend: see docs/deployment.md).

    With ``await task_group.start(serve, ...)`` the caller resumes once the room is
    registered. Raises :class:`RendezvousRefused` for a wrong host token or a room that
    stays taken.
    """
    options = options or WebRTCOptions()
    urls = rendezvous_urls(url)
    started = False
    fatal: SignalingError | None = None
    backoff = 0.5
    async with anyio.create_task_group() as tg:
        sessions = _Sessions(tg, target, options, max_sessions, access or Access(), metrics)
        while True:
            try:
                registration = RendezvousHost(
                    urls, room, token, client_token, labeled_tokens=labeled_tokens
                )
                async with registration as host:
                    logger.info("registered room %r at %s", room, host.url)
                    at = urls.index(host.url)  # after a loss, the next URL is tried first
                    urls = (*urls[at + 1 :], *urls[: at + 1])
                    backoff = 0.5
                    if not started:
                        started = True
                        task_status.started()
                    try:
                        async for session in host.sessions():
                            await sessions.start(session)
                    except anyio.get_cancelled_exc_class():
                        with anyio.CancelScope(shield=True):  # byes still travel through host
                            await sessions.end_all()
                        raise
            except RendezvousRefused as exc:
                if exc.code in _FATAL or not started:
                    fatal = exc
                    break
                logger.warning("rendezvous refused registering again: %s", exc)
            except SignalingError as exc:
                if not started:
                    fatal = exc
                    break
                logger.warning("rendezvous unreachable: %s", exc)
            logger.info("rendezvous connection lost; registering again in %.1f s", backoff)
            await anyio.sleep(backoff)
            backoff = min(backoff * 2, 10.0)
        tg.cancel_scope.cancel()  # only reached on a fatal refusal
    if fatal is not None:
        raise fatal  # outside the task group: the caller gets the error itself


__all__ = ["MAX_SESSIONS", "bridge", "connect", "serve", "stdio_command_handler"]
