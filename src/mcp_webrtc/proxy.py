"""``mcp-webrtc connect``: a stdio MCP server for a local client, whose other end is a
remote MCP server reached over WebRTC.

Every way it ends tells the client, in time, and ends the process:

* **The WebRTC session ends** (the server said bye, stopped answering for
  ``dead_peer_timeout``, or its channel closed): each request the client still waits for
  gets a JSON-RPC error (-32000) naming the reason, stdout is closed, one line goes to
  stderr, exit status 1. At once after a bye; ``dead_peer_timeout`` after a vanished peer.
* **stdin reaches end of file**: the answers to requests already sent are still delivered,
  for at most ``eof_timeout`` seconds (then each gets an error), the session says bye,
  exit status 0.
* **Connecting fails** (wrong token, unknown room, unreachable rendezvous, no answer within
  ``connect_timeout``): the client's requests, its ``initialize`` first, are answered with
  an error naming the reason until stdin closes (at most :data:`LINGER` seconds), one line
  goes to stderr, exit status 1. With ``wait``, a room that does not exist yet or an
  unreachable rendezvous is retried for that many seconds, with a status line on stderr.
* **Cancelled** (SIGTERM or SIGINT through the command line): pending requests get an
  error, the session says bye within ``close_timeout``.

Messages pass through unparsed both ways: only their kind and id are read from their first
bytes, to answer in the server's place. stdin and stdout are read and written by daemon
threads (:mod:`mcp_webrtc._stdio`), so the process never outlives its session waiting on
either.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack
from typing import Any

import anyio

from ._core import jsonrpc
from ._core import rendezvous as proto
from ._stdio import LineReader, LineWriter
from .bridges import too_large_answer
from .exceptions import (
    MCPWebRTCError,
    MessageTooLargeError,
    PeerGoneError,
    RendezvousRefused,
    SignalingError,
)
from .peer import DataChannelPeer
from .relay import CONNECTION_CLOSED, LINGER
from .stdio_server import as_line

#: What connect needs of a client's message: the message, its kind and id.
Envelope = tuple[jsonrpc.Kind, jsonrpc.RequestId | None]

logger = logging.getLogger("mcp_webrtc.proxy")

#: Default of ``eof_timeout``.
EOF_TIMEOUT = 30.0


class StdioProxy:
    """Runs one ``connect`` session between ``stdin``/``stdout`` and a remote server.

    ``open_peer`` makes a new (unentered) client peer for each attempt;
    ``stdin`` and ``stdout`` are file descriptors (see :func:`mcp_webrtc._stdio.take_stdio`),
    ``stdout`` is closed at the end; ``status`` prints a one-line status (to stderr).
    """

    def __init__(
        self,
        open_peer: Callable[[], AbstractAsyncContextManager[DataChannelPeer]],
        *,
        stdin: int,
        stdout: int,
        status: Callable[[str], None],
        wait: float = 0.0,
        eof_timeout: float = EOF_TIMEOUT,
        target: str = "the MCP server",
    ) -> None:
        self._open = open_peer
        self._stdin, self._stdout = stdin, stdout
        self._status = status
        self._wait = wait
        self._eof_timeout = eof_timeout
        self._target = target
        self._pending: dict[jsonrpc.RequestId, None] = {}  # asked by the client, unanswered
        self._answered = anyio.Event()  # set while nothing is pending
        self._answered.set()

    async def run(self) -> int:
        """Serve until one of the ends in the module docstring; returns the exit status."""
        self._writer = LineWriter(self._stdout)
        forward, self._from_client = anyio.create_memory_object_stream[tuple[str, Envelope]](16)
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._read_client, LineReader(self._stdin), forward)
            try:
                status = await self._serve()
            except anyio.get_cancelled_exc_class():
                with anyio.CancelScope(shield=True):
                    await self._finish("mcp-webrtc connect was stopped")
                raise
            tg.cancel_scope.cancel()
        return status

    # ---------------------------------------------------------------- the client side

    async def _read_client(self, reader: LineReader, forward: Any) -> None:
        """Lines from the client, passed on as they are; only their kind and id are read
        (to answer in the server's place when it cannot)."""
        async with forward:
            while (line := await reader.readline()) is not None:
                text = line.decode("utf-8", errors="replace").strip()
                if not text:
                    continue
                found = jsonrpc.envelope(text)
                if found is None:  # not even a JSON object: nothing to forward
                    logger.warning("the client sent something that is not JSON: %.200r", text)
                    await self._write(
                        jsonrpc.error_response(None, jsonrpc.PARSE_ERROR, "Parse error")
                    )
                    continue
                kind, request_id = found
                if kind == "request" and request_id is not None:
                    self._pending[request_id] = None
                    self._answered = anyio.Event()
                await forward.send((text, found))

    async def _write(self, message: str | bytes | bytearray) -> None:
        await self._writer.write(as_line(message))

    def _settled(self, request_id: jsonrpc.RequestId | None) -> None:
        if request_id is not None:
            self._pending.pop(request_id, None)
        if not self._pending:
            self._answered.set()

    async def _fail_pending(self, message: str, code: int = CONNECTION_CLOSED) -> None:
        for request_id in list(self._pending):
            await self._write(jsonrpc.error_response(request_id, code, message))
            self._settled(request_id)

    async def _finish(self, why: str) -> None:
        """Answer what is pending with ``why``, then close stdout (bounded)."""
        await self._fail_pending(why)
        await self._writer.aclose(grace=5.0)

    # ---------------------------------------------------------------- the session

    async def _serve(self) -> int:
        async with AsyncExitStack() as stack:
            try:
                peer = await self._connect(stack)
            except MCPWebRTCError as exc:
                return await self._refuse(str(exc))
            gone = await self._bridge(peer)
            if gone is None:  # stdin closed and the answers were delivered (or timed out)
                await self._finish(f"no answer within {self._eof_timeout:g} s after stdin closed")
                return 0
            await self._finish(f"Connection closed: {self._target} went away ({gone})")
            self._status(f"{self._target} went away: {gone}")
            return 1
        raise AssertionError("unreachable")  # pragma: no cover - the block returns

    async def _connect(self, stack: AsyncExitStack) -> DataChannelPeer:
        return await enter_peer(stack, self._open, self._wait, self._status, self._target)

    async def _refuse(self, reason: str) -> int:
        """Connecting failed: answer the client's requests with the reason, then end."""
        self._status(f"cannot connect to {self._target}: {reason}")
        message = f"mcp-webrtc could not connect to {self._target}: {reason}"
        with anyio.move_on_after(LINGER):
            await self._fail_pending(message)
            async for _ in self._from_client:  # e.g. initialize after a refused probe
                await self._fail_pending(message)
        await self._writer.aclose(grace=5.0)
        return 1

    async def _bridge(self, peer: DataChannelPeer) -> str | None:
        """Relay both ways, passing messages through. Returns why the server went away, or
        ``None`` when stdin ended first (after waiting, at most ``eof_timeout``, for the
        answers still due)."""
        gone: list[str] = []
        async with anyio.create_task_group() as tg:

            async def to_server() -> None:
                async for text, (kind, request_id) in self._from_client:
                    try:
                        await peer.send(text)
                    except MessageTooLargeError as exc:
                        if kind == "request":
                            await self._write(too_large_answer(request_id, exc))
                            self._settled(request_id)
                    except PeerGoneError:
                        return  # the server went away: to_client reports it
                with anyio.move_on_after(self._eof_timeout):
                    await self._answered.wait()
                tg.cancel_scope.cancel()

            async def to_client() -> None:
                async for payload in peer:
                    found = jsonrpc.envelope(payload, request_ids=False)
                    await self._write(payload)
                    if found is not None and found[0] == "response":
                        self._settled(found[1])
                gone.append(peer.gone_reason or "the connection closed")
                tg.cancel_scope.cancel()

            tg.start_soon(to_server)
            tg.start_soon(to_client)
        return gone[0] if gone else None


async def enter_peer(
    stack: AsyncExitStack,
    open_peer: Callable[[], AbstractAsyncContextManager[DataChannelPeer]],
    wait: float,
    status: Callable[[str], None],
    target: str,
) -> DataChannelPeer:
    """Enter a new peer on ``stack``; for ``wait`` seconds, retry (with a ``status`` line)
    while the room is not there yet or the rendezvous is unreachable."""
    deadline = time.monotonic() + wait
    delay = 0.5
    while True:
        try:
            return await stack.enter_async_context(open_peer())
        except SignalingError as exc:
            left = deadline - time.monotonic()
            room_missing = not isinstance(exc, RendezvousRefused) or (
                exc.code == proto.UNAUTHORIZED
            )
            if not room_missing or left <= 0:
                raise
            status(f"waiting for {target}: {exc} (retrying for {left:.0f} s)")
            await anyio.sleep(min(delay, left))
            delay = min(delay * 2, 5.0)


__all__ = ["CONNECTION_CLOSED", "EOF_TIMEOUT", "LINGER", "StdioProxy", "enter_peer"]
