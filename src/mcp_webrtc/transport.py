"""MCP transports over a WebRTC data channel, shaped like the MCP SDK's own.

``WebRTCServerTransport`` and ``WebRTCClientTransport`` are async context managers. Entering
one connects to the peer behind the signaling channel and yields ``(read_stream,
write_stream)``: the read stream gives :class:`mcp.shared.message.SessionMessage` objects,
the write stream takes them, exactly like ``stdio_client`` / ``stdio_server``::

    async with WebRTCClientTransport(signaling) as (read, write):
        async with ClientSession(read, write) as session: ...

    async with mcp.Client(WebRTCClientTransport(signaling)) as client: ...   # mcp 2.x

Connecting
    Entering waits at most ``options.connect_timeout`` for the data channel to open, then
    raises :class:`~mcp_webrtc.exceptions.ConnectTimeoutError` naming the stage that stalled
    (no offer/answer, no local or remote candidates, ICE checks, DTLS, channel).

While connected
    ``write_stream.send()`` returns once the channel has taken the message's last frame; a
    message above this side's or the peer's limit raises
    :class:`~mcp_webrtc.exceptions.MessageTooLargeError` and nothing is sent (a *response*
    that is too large is replaced by a JSON-RPC error answer, so the remote caller learns
    why). Malformed input from the peer is answered with a JSON-RPC error and logged; the
    session continues.

Shutdown
    The read stream ends when the peer says bye, closes the channel, or stops answering for
    ``options.dead_peer_timeout`` seconds; the SDK then fails pending requests with its
    connection-closed error. Leaving the context flushes queued messages (at most half of
    ``options.close_timeout``), sends bye over signaling, closes the data channel, the peer
    connection and the signaling channel; the whole exit takes at most
    ``options.close_timeout`` seconds and leaves no task behind.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from types import TracebackType

import anyio
from anyio.abc import ObjectSendStream
from anyio.streams.memory import MemoryObjectReceiveStream
from mcp.shared.message import SessionMessage

from ._compat import Rejected, classify, dump_message, read_message
from ._core import jsonrpc
from .exceptions import MessageTooLargeError
from .info import ConnectionInfo
from .options import WebRTCOptions
from .peer import DataChannelPeer, open_peer
from .signaling import Signaling, as_signaling

logger = logging.getLogger("mcp_webrtc.transport")

ReadStream = MemoryObjectReceiveStream[SessionMessage | Exception]


class WebRTCWriteStream(ObjectSendStream[SessionMessage]):
    """The write side handed to the MCP session."""

    def __init__(self, peer: DataChannelPeer) -> None:
        self._peer = peer
        self._closed = False

    async def send(self, item: SessionMessage) -> None:
        if self._closed:
            raise anyio.ClosedResourceError
        text = dump_message(item)
        try:
            await self._peer.send(text)
        except MessageTooLargeError as exc:
            kind, request_id = classify(item)
            if kind != "response":
                raise
            logger.warning("response to request %r not sent: %s", request_id, exc)
            await self._peer.send(
                jsonrpc.error_response(
                    request_id,
                    jsonrpc.MESSAGE_TOO_LARGE,
                    f"Result too large to send: {exc}",
                    {"size": exc.size, "limit": exc.limit},
                )
            )

    async def aclose(self) -> None:
        self._closed = True


@asynccontextmanager
async def mcp_streams(
    peer: DataChannelPeer,
) -> AsyncIterator[tuple[ReadStream, WebRTCWriteStream]]:
    """Bridge a connected peer to MCP SDK read/write streams."""
    # No buffer: the pump waits for the session to take each message, so a slow reader
    # holds back the peer (which holds back the channel; see WebRTCOptions.max_receive_queue).
    read_send, read_receive = anyio.create_memory_object_stream[SessionMessage | Exception](0)

    async def pump() -> None:
        async with read_send:
            async for payload in peer:
                message = read_message(payload)
                if isinstance(message, Rejected):
                    logger.warning("peer sent %s", message.why)
                    if message.answer is not None:
                        peer.send_soon(message.answer)
                    continue
                try:
                    await read_send.send(message)
                except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                    return

    body_error: Exception | None = None
    async with anyio.create_task_group() as tg:
        tg.start_soon(pump)
        try:
            yield read_receive, WebRTCWriteStream(peer)
        except Exception as exc:  # the caller's own error: re-raised unwrapped below
            body_error = exc
        finally:
            tg.cancel_scope.cancel()
    if body_error is not None:
        raise body_error


class _WebRTCTransport:
    _server_side: bool

    def __init__(self, signaling: Signaling | object, options: WebRTCOptions | None = None):
        self.signaling = as_signaling(signaling)
        self.options = options or WebRTCOptions()
        self._stack: AsyncExitStack | None = None
        self._peer: DataChannelPeer | None = None

    @property
    def initiator(self) -> bool:
        initiator = self.options.initiator
        return self._server_side if initiator is None else initiator

    async def __aenter__(self) -> tuple[ReadStream, WebRTCWriteStream]:
        if self._stack is not None:
            raise RuntimeError("this transport is already in use")
        stack = AsyncExitStack()
        await stack.__aenter__()
        try:
            self._peer = await stack.enter_async_context(
                open_peer(self.signaling, self.options, initiator=self.initiator)
            )
            streams = await stack.enter_async_context(mcp_streams(self._peer))
        except BaseException as exc:
            await stack.__aexit__(type(exc), exc, exc.__traceback__)
            raise
        self._stack = stack
        return streams

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        stack, self._stack = self._stack, None
        if stack is None:
            return None
        return await stack.__aexit__(exc_type, exc, tb)

    @property
    def peer(self) -> DataChannelPeer:
        if self._peer is None:
            raise RuntimeError("the transport is not connected")
        return self._peer

    def connection_info(self) -> ConnectionInfo:
        """Selected candidate pair, RTT and byte counts of the live connection."""
        return self.peer.info()


class WebRTCServerTransport(_WebRTCTransport):
    """The MCP server's side. By default it makes the offer and opens the data channel."""

    _server_side = True


class WebRTCClientTransport(_WebRTCTransport):
    """The MCP client's side. By default it answers the server's offer."""

    _server_side = False


@asynccontextmanager
async def webrtc_client_transport(
    signaling: Signaling | object, options: WebRTCOptions | None = None
) -> AsyncIterator[tuple[ReadStream, WebRTCWriteStream]]:
    """Function form of :class:`WebRTCClientTransport`."""
    async with WebRTCClientTransport(signaling, options) as streams:
        yield streams


@asynccontextmanager
async def webrtc_server_transport(
    signaling: Signaling | object, options: WebRTCOptions | None = None
) -> AsyncIterator[tuple[ReadStream, WebRTCWriteStream]]:
    """Function form of :class:`WebRTCServerTransport`."""
    async with WebRTCServerTransport(signaling, options) as streams:
        yield streams
