"""``connect --listen``: a local Streamable HTTP MCP endpoint whose server is reached over
WebRTC, for MCP clients that speak only HTTP.

:class:`HttpEndpoint` is an ASGI application serving the MCP SDK's Streamable HTTP server
transport at one path (``/mcp``). Each HTTP MCP session, opened by an ``initialize`` POST,
gets its own WebRTC session (``open_peer``); any other request without a session id is
answered by the SDK's transport (400) and costs no connection, so an SDK client's
``server/discover`` probe falls back to ``initialize`` at once.

Messages from the remote server travel on the response stream of the request they belong
to: a progress notification on its call's stream, any other server request or notification
on the latest pending request's stream, and on the standalone GET stream when nothing is
pending (see :meth:`mcp_webrtc.relay.Calls.related`).

Every end is told to the HTTP client:

* **Connecting fails** (wrong token, unknown room, no answer in ``connect_timeout``): the
  ``initialize`` gets a JSON-RPC error naming why, and so does every request of that
  session for :data:`~mcp_webrtc.relay.LINGER` seconds; then the session is terminated
  (further requests: 404, on which clients open a new session).
* **The WebRTC session ends**: pending requests get a -32000 error naming why, then the same.
* **The client ends the session** (HTTP DELETE), or sends nothing for ``idle_timeout``:
  the WebRTC session says bye.
* **Stopping** (:meth:`HttpEndpoint.running` cancelled): every session says bye.
"""

from __future__ import annotations

import inspect
import logging
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from typing import Any

import anyio
from anyio.abc import TaskGroup, TaskStatus
from mcp.server.streamable_http import StreamableHTTPServerTransport
from mcp.server.transport_security import RequestBodyLimitMiddleware, TransportSecuritySettings
from mcp.shared.message import SessionMessage
from starlette.responses import PlainTextResponse, Response
from starlette.types import Message, Receive, Scope, Send

from ._core import jsonrpc
from .exceptions import MCPWebRTCError
from .options import WebRTCOptions
from .peer import DataChannelPeer
from .proxy import enter_peer
from .relay import Calls, UpstreamGone, refuse, relay, tag_related
from .transport import mcp_streams

logger = logging.getLogger("mcp_webrtc.listen")

#: Whether this mcp's server transport can end idle sessions itself (older 1.x cannot).
_HAS_IDLE_TIMEOUT = "idle_timeout" in inspect.signature(StreamableHTTPServerTransport).parameters

#: The path the MCP SDKs use by default.
PATH = "/mcp"
#: Default of ``HttpEndpoint(max_sessions=...)``.
MAX_SESSIONS = 100
#: Default of ``HttpEndpoint(idle_timeout=...)``, as the MCP SDK's session manager.
IDLE_TIMEOUT = 30 * 60.0


def loopback_security(port: int) -> TransportSecuritySettings:
    """DNS-rebinding protection for an endpoint on loopback: only ``Host`` headers naming a
    loopback address (or localhost) at ``port``, and browser pages from such origins."""
    names = ["127.0.0.1", "localhost", "[::1]"]
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=[f"{name}:{port}" for name in names],
        allowed_origins=[f"http://{name}:{port}" for name in names],
    )


class HttpEndpoint:
    """ASGI app: the Streamable HTTP endpoint at ``path``; see the module docstring.

    ``open_peer`` makes a new (unentered) WebRTC client peer for each HTTP MCP session;
    ``target`` names the remote server in error messages; ``security`` is passed to the
    SDK's transport (see :func:`loopback_security`); a request body above
    ``max_message_size`` is refused (413). With ``wait``, an ``initialize`` waits that long
    for a room that is not there yet (``status`` tells why it waits)."""

    def __init__(
        self,
        open_peer: Callable[[], AbstractAsyncContextManager[DataChannelPeer]],
        *,
        target: str = "the MCP server",
        path: str = PATH,
        security: TransportSecuritySettings | None = None,
        max_sessions: int = MAX_SESSIONS,
        idle_timeout: float | None = IDLE_TIMEOUT,
        max_message_size: int | None = None,
        wait: float = 0.0,
        status: Callable[[str], None] = lambda line: None,
    ) -> None:
        self._open = open_peer
        self._target = target
        self.path = path
        self._security = security
        self._max_sessions = max_sessions
        self._idle_timeout = idle_timeout
        self._wait, self._status = wait, status
        self._sessions: dict[str, StreamableHTTPServerTransport] = {}
        self._tg: TaskGroup | None = None
        limit = max_message_size or WebRTCOptions().max_message_size
        self._app = RequestBodyLimitMiddleware(self._route, limit)

    @property
    def sessions(self) -> int:
        """The HTTP MCP sessions open now (each with its WebRTC session)."""
        return len(self._sessions)

    @asynccontextmanager
    async def running(self) -> AsyncIterator[HttpEndpoint]:
        """Serve sessions while inside; leaving ends every session (each says bye)."""
        async with anyio.create_task_group() as tg:
            self._tg = tg
            try:
                yield self
            finally:
                self._tg = None
                tg.cancel_scope.cancel()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._app(scope, receive, send)

    async def _route(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        if scope["path"].rstrip("/") != self.path.rstrip("/"):
            await PlainTextResponse("Not Found", 404)(scope, receive, send)
            return
        wanted = dict(scope["headers"]).get(b"mcp-session-id")
        if wanted is not None:
            http = self._sessions.get(wanted.decode("latin-1"))
            if http is None:
                await _error(404, "Session not found")(scope, receive, send)
                return
            await http.handle_request(scope, receive, send)
            return
        if scope["method"] != "POST":
            await _error(400, "Bad Request: Missing session ID")(scope, receive, send)
        elif self._tg is None or len(self._sessions) >= self._max_sessions:
            await _error(503, "Too many open sessions")(scope, receive, send)
        else:
            await self._open_session(self._tg, scope, receive, send)

    async def _open_session(
        self, tg: TaskGroup, scope: Scope, receive: Receive, send: Send
    ) -> None:
        http = _server_transport(uuid.uuid4().hex, self._security, self._idle_timeout)
        session_id = str(http.mcp_session_id)
        self._sessions[session_id] = http
        await tg.start(self._session, http)
        status: list[int] = []

        async def watched(message: Message) -> None:
            if message["type"] == "http.response.start":
                status.append(message["status"])
            await send(message)

        try:
            await http.handle_request(scope, receive, watched)
        finally:
            if not status or status[0] >= 400:  # nothing opened: no WebRTC session either
                await self._discard(session_id, http)

    async def _discard(self, session_id: str, http: StreamableHTTPServerTransport) -> None:
        self._sessions.pop(session_id, None)
        if not http.is_terminated:
            with anyio.CancelScope(shield=True):
                await http.terminate()

    async def _session(
        self, http: StreamableHTTPServerTransport, *, task_status: TaskStatus[None]
    ) -> None:
        """One HTTP MCP session, until it ends; whatever happens, the others go on."""
        try:
            async with http.connect() as (read, write):
                task_status.started()
                idle = getattr(http, "idle_scope", None) or anyio.CancelScope()
                with idle:
                    await self._relay(read, write)
                if idle.cancelled_caught:
                    logger.info("HTTP session idle for %s s: closed", self._idle_timeout)
        except Exception:
            logger.exception("HTTP session %s failed", http.mcp_session_id)
        finally:
            await self._discard(str(http.mcp_session_id), http)

    async def _relay(self, read: Any, write: Any) -> None:
        """One HTTP MCP session: its ``initialize`` opens the WebRTC session."""
        try:
            first = await read.receive()
        except (anyio.EndOfStream, anyio.ClosedResourceError):
            return  # its opening request was refused by the SDK's transport
        if not isinstance(first, SessionMessage):
            return  # the transport could not parse it, and has answered the client
        calls = Calls()
        calls.asked(first)
        try:
            async with AsyncExitStack() as stack:
                peer = await enter_peer(stack, self._open, self._wait, self._status, self._target)
                upstream = await stack.enter_async_context(mcp_streams(peer))
                logger.info("HTTP session connected to %s", self._target)
                try:
                    await upstream[1].send(first)
                    await relay((read, write), upstream, calls, tag_related(calls))
                    return  # the HTTP client ended the session: the peer says bye
                except (UpstreamGone, anyio.BrokenResourceError):
                    why = peer.gone_reason or "the connection closed"
                    reason = f"Connection closed: {self._target} went away ({why})"
        except MCPWebRTCError as exc:
            reason = f"mcp-webrtc could not connect to {self._target}: {exc}"
        logger.warning("%s", reason)
        await refuse(read, write, calls, reason)


def _server_transport(
    session_id: str, security: TransportSecuritySettings | None, idle_timeout: float | None
) -> StreamableHTTPServerTransport:
    """The SDK's server transport for one session (``idle_timeout`` where the SDK has it)."""
    extra: dict[str, Any] = {"idle_timeout": idle_timeout} if _HAS_IDLE_TIMEOUT else {}
    return StreamableHTTPServerTransport(
        mcp_session_id=session_id,
        is_json_response_enabled=False,
        security_settings=security,
        **extra,
    )


def _error(status: int, message: str) -> Response:
    code = jsonrpc.INVALID_REQUEST if status < 500 else -32603  # internal error
    body = jsonrpc.error_response(None, code, message)
    return Response(body, status, media_type="application/json")


__all__ = ["IDLE_TIMEOUT", "MAX_SESSIONS", "PATH", "HttpEndpoint", "loopback_security"]
