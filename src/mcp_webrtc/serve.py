"""Serving many peers through a rendezvous, connecting to one, and stdio bridges.

``serve(target, url, room=..., token=..., client_token=...)`` registers ``room`` at the
rendezvous and gives every client that joins its own WebRTC peer connection and its own
MCP session, concurrently, up to ``max_sessions``. ``target`` is an MCP server object
(``MCPServer``, ``FastMCP``, low-level ``Server``) or a session handler: an async callable
taking ``(read_stream, write_stream)``, such as :func:`stdio_command_handler` which runs one
stdio MCP server process per peer. If the rendezvous connection drops, established sessions
go on and ``serve`` registers again (with backoff). Cancelling ``serve`` closes every
session, each within ``options.close_timeout``.

``connect(url, room=..., token=...)`` returns a client transport for ``mcp.Client`` or
``ClientSession``.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TextIO

import anyio
from anyio.abc import TaskStatus
from mcp.shared.message import SessionMessage

from ._compat import classify, find_lowlevel_server, parse_message
from ._core import jsonrpc
from .exceptions import ConnectError, MCPWebRTCError, MessageTooLargeError, SignalingError
from .options import WebRTCOptions
from .server import run_server
from .transport import WebRTCClientTransport, WebRTCServerTransport
from .websocket_signaling import (
    HostSession,
    RendezvousHost,
    RendezvousRefused,
    WebSocketSignaling,
)

logger = logging.getLogger("mcp_webrtc.serve")

SessionHandler = Callable[[Any, Any], Awaitable[None]]

#: Refusals that registering again cannot fix.
_FATAL = {"unauthorized", "bad-message", "too-many-rooms"}


def connect(
    url: str, *, room: str, token: str, options: WebRTCOptions | None = None
) -> WebRTCClientTransport:
    """A client transport that joins ``room`` at the rendezvous ``url`` with ``token``."""
    return WebRTCClientTransport(WebSocketSignaling(url, room, token), options)


async def pump(source: Any, sink: Any, back: Any) -> None:
    """Forward SDK session messages from ``source`` to ``sink`` until ``source`` ends.

    A request too large for ``sink`` is answered on ``back`` (the source's write side)
    with a -32050 error, so the caller learns why; a too-large notification is dropped
    with a log line. Either way the bridge goes on.
    """
    async with sink:
        async for item in source:
            if not isinstance(item, SessionMessage):
                logger.warning("dropping unparsable message: %s", item)
                continue
            try:
                await sink.send(item)
            except MessageTooLargeError as exc:
                kind, request_id = classify(item)
                logger.warning("%s not forwarded: %s", kind, exc)
                if kind == "request":
                    error = jsonrpc.error_response(
                        request_id,
                        jsonrpc.MESSAGE_TOO_LARGE,
                        f"Request too large to forward: {exc}",
                        {"size": exc.size, "limit": exc.limit},
                    )
                    await back.send(parse_message(error))


async def bridge(a: tuple[Any, Any], b: tuple[Any, Any]) -> None:
    """Join two ``(read, write)`` stream pairs until either side ends."""
    async with anyio.create_task_group() as tg:

        async def one_way(source: Any, sink: Any, back: Any) -> None:
            try:
                await pump(source, sink, back)
            finally:
                tg.cancel_scope.cancel()

        tg.start_soon(one_way, a[0], b[1], a[1])
        tg.start_soon(one_way, b[0], a[1], b[1])


def stdio_command_handler(
    command: str,
    args: Sequence[str] = (),
    *,
    env: dict[str, str] | None = None,
    cwd: str | None = None,
    errlog: TextIO = sys.stderr,
) -> SessionHandler:
    """A session handler that runs ``command`` as a stdio MCP server for each peer.

    Its stderr goes to ``errlog``; the SDK's stdio client ends the process (tree) when the
    peer leaves.
    """
    from mcp.client.stdio import StdioServerParameters, stdio_client

    params = StdioServerParameters(
        command=command, args=list(args), env={**os.environ, **(env or {})}, cwd=cwd
    )

    async def handle(read: Any, write: Any) -> None:
        async with stdio_client(params, errlog=errlog) as child:
            await bridge((read, write), child)

    return handle


async def _one_session(target: object, session: HostSession, options: WebRTCOptions) -> None:
    transport = WebRTCServerTransport(session, options)
    try:
        if find_lowlevel_server(target) is not None:
            await run_server(target, transport)
        else:
            handler: SessionHandler = target  # type: ignore[assignment]
            async with transport as (read, write):
                info = transport.connection_info()
                logger.info(
                    "session %s connected (%s <-> %s)",
                    session.session,
                    info.local_candidate_type,
                    info.remote_candidate_type,
                )
                await handler(read, write)
    except ConnectError as exc:
        logger.warning("session %s did not connect: %s", session.session, exc)
    except MCPWebRTCError as exc:
        logger.warning("session %s ended: %s", session.session, exc)
    except Exception:
        logger.exception("session %s failed", session.session)
    finally:
        logger.info("session %s closed", session.session)


async def serve(
    target: object,
    url: str,
    *,
    room: str,
    token: str,
    client_token: str,
    options: WebRTCOptions | None = None,
    max_sessions: int = 100,
    task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``target`` to every client joining ``room`` (see the module docstring).

    With ``await task_group.start(serve, ...)`` the caller resumes once the room is
    registered. Raises :class:`RendezvousRefused` for a wrong host token or a room that
    stays taken.
    """
    options = options or WebRTCOptions()
    active = 0
    started = False
    fatal: SignalingError | None = None
    backoff = 0.5
    async with anyio.create_task_group() as sessions:

        async def run_one(session: HostSession) -> None:
            nonlocal active
            try:
                await _one_session(target, session, options)
            finally:
                active -= 1

        while True:
            try:
                async with RendezvousHost(url, room, token, client_token) as host:
                    logger.info("registered room %r at %s", room, url)
                    backoff = 0.5
                    if not started:
                        started = True
                        task_status.started()
                    async for session in host.sessions():
                        if active >= max_sessions:
                            logger.warning("refusing session %s: server full", session.session)
                            await session.send({"type": "bye", "reason": "server full"})
                            await session.close()
                            continue
                        active += 1
                        sessions.start_soon(run_one, session)
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
        sessions.cancel_scope.cancel()  # only reached on a fatal refusal
    if fatal is not None:
        raise fatal  # outside the task group: the caller gets the error itself


__all__ = ["bridge", "connect", "serve", "stdio_command_handler"]
