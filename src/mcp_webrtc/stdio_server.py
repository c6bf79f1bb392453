"""A stdio MCP server process for each peer of ``serve``, its JSON-RPC passed through.

Lines from the process go to the peer as they are, and the peer's messages to the process:
nothing is parsed or re-serialized on the way. Only what a bridge must know is read from a
message's first bytes (its kind and id, :func:`~mcp_webrtc._core.jsonrpc.envelope`), to
answer in its place when it cannot be delivered: a request too large for the peer gets a
-32050 error answer, and a response too large becomes that error for the peer's caller.

The process gets the MCP SDK's default environment plus only what the operator names (see
:func:`~mcp_webrtc.bridges.child_environment`); it starts in its own process group, and
when the peer leaves its stdin is closed, then the group is terminated (after 2 s) and
killed (after 2 more), as the SDK's stdio client does.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import anyio
from anyio.abc import ByteReceiveStream, Process

from ._core import jsonrpc
from ._core.policy import Gate
from .exceptions import MessageTooLargeError

Pending = dict[jsonrpc.RequestId, None]

if TYPE_CHECKING:
    from .peer import DataChannelPeer

logger = logging.getLogger("mcp_webrtc.stdio_server")

#: Largest message from a peer parsed whole to learn its request id (see _to_process).
WHOLE_PARSE_LIMIT = 64 * 1024
#: Seconds a process has to exit after its stdin closed, then after SIGTERM.
EXIT_GRACE = 2.0


class LineReceiver:
    """Lines of a byte stream, without their newline. A line longer than ``limit`` is not
    kept: :meth:`receive` returns ``(None, head, size)`` for it, its first bytes and size."""

    def __init__(self, stream: ByteReceiveStream, limit: int) -> None:
        self._stream = stream
        self._limit = limit
        self._buffer = bytearray()
        self._searched = 0  # bytes of the buffer known to hold no newline

    async def receive(self) -> tuple[bytes | None, bytes, int] | None:
        """``(line, b"", 0)``, or ``(None, head, size)`` for an oversize line, or ``None`` at
        the end of the stream."""
        buffer = self._buffer
        head, size = b"", 0  # of a line being discarded
        while True:
            index = buffer.find(b"\n", self._searched)
            if index >= 0:
                line = bytes(buffer[:index])
                del buffer[: index + 1]
                self._searched = 0
                if head or size:
                    return None, head, size + len(line)
                return line, b"", 0
            if len(buffer) > self._limit:  # keep its start, drop the rest as it comes
                head, size = head or bytes(buffer[: jsonrpc.ENVELOPE_HEAD]), size + len(buffer)
                buffer.clear()
            self._searched = len(buffer)
            try:
                buffer += await self._stream.receive()
            except (anyio.EndOfStream, anyio.ClosedResourceError, anyio.BrokenResourceError):
                if buffer and not (head or size):
                    line, self._searched = bytes(buffer), 0
                    buffer.clear()
                    return line, b"", 0
                return None


def as_line(payload: str | bytes | bytearray) -> bytes:
    """A message as one stdio line: newlines (only ever JSON whitespace) become spaces."""
    data = payload.encode() if isinstance(payload, str) else bytes(payload)
    if b"\n" in data or b"\r" in data:
        data = data.replace(b"\r", b" ").replace(b"\n", b" ")
    return data + b"\n"


class StdioServer:
    """Runs ``command`` as a stdio MCP server for each peer (a target of ``serve``)."""

    def __init__(
        self,
        command: str,
        args: Sequence[str] = (),
        *,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
    ) -> None:
        self.command = command
        self.args = list(args)
        self.env = dict(env or {})
        self.cwd = cwd

    async def serve_peer(self, peer: DataChannelPeer, gate: Gate | None = None) -> None:
        """Run one process for ``peer`` until either ends; with a ``gate``, what the peer
        may use and see is checked (and recorded) on the way."""
        from mcp.client.stdio import get_default_environment

        process = await anyio.open_process(
            [self.command, *self.args],
            env={**get_default_environment(), **self.env},
            cwd=self.cwd,
            stderr=None,  # the server's log goes where serve's goes
            start_new_session=True,
        )
        pending: dict[jsonrpc.RequestId, None] = {}  # the peer's requests not yet answered
        try:
            async with anyio.create_task_group() as tg:

                async def to_process() -> None:
                    await self._to_process(peer, process, gate, pending)
                    tg.cancel_scope.cancel()

                async def from_process() -> None:
                    await self._from_process(peer, process, gate, pending)
                    tg.cancel_scope.cancel()

                tg.start_soon(to_process)
                tg.start_soon(from_process)
        finally:
            why = peer.gone_reason or "the server process ended"
            if gate is not None:
                gate.end(why)
            with anyio.CancelScope(shield=True):
                await _cancel(process, pending, f"the peer went away ({why})")
                await stop(process)

    async def _to_process(
        self, peer: DataChannelPeer, process: Process, gate: Gate | None, pending: Pending
    ) -> None:
        assert process.stdin is not None
        with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError):
            async for payload in peer:
                if gate is not None and (answer := gate.from_peer(_json(payload), len(payload))):
                    await peer.send(answer)  # refused: the process never sees it
                    continue
                # the id, to cancel the work if the peer leaves; a large request whose id
                # comes last (the TypeScript SDK's order) is not parsed whole for it
                small = len(payload) <= WHOLE_PARSE_LIMIT
                kind, request_id = jsonrpc.envelope(payload, request_ids=small) or ("", None)
                if kind == "request" and request_id is not None:
                    pending[request_id] = None
                await process.stdin.send(as_line(payload))

    async def _from_process(
        self, peer: DataChannelPeer, process: Process, gate: Gate | None, pending: Pending
    ) -> None:
        assert process.stdout is not None
        lines = LineReceiver(process.stdout, peer.options.max_message_size)
        while (item := await lines.receive()) is not None:
            line, head, size = item
            answered = jsonrpc.envelope(line or head, request_ids=False)
            if answered is not None and answered[0] == "response" and answered[1] is not None:
                pending.pop(answered[1], None)
            try:
                if line is None:
                    limit = peer.options.max_message_size
                    raise MessageTooLargeError(size, limit, "this side's")
                text = line.decode("utf-8", errors="replace")
                if gate is not None:
                    message = _json(text)
                    shown = gate.from_server(message, len(line))
                    text = text if shown is message else json.dumps(shown)
                await peer.send(text)
            except MessageTooLargeError as exc:
                await self._undeliverable(peer, process, line or head, exc)
        logger.info("the MCP server process ended")

    async def _undeliverable(
        self, peer: DataChannelPeer, process: Process, start: bytes, exc: MessageTooLargeError
    ) -> None:
        kind, request_id = jsonrpc.envelope(start) or ("notification", None)
        logger.warning("%s from the MCP server not forwarded: %s", kind, exc)
        data = {"size": exc.size, "limit": exc.limit}
        if kind == "request":  # the process asked the peer: tell it why nothing comes
            answer = jsonrpc.error_response(
                request_id, jsonrpc.MESSAGE_TOO_LARGE, f"Request too large to forward: {exc}", data
            )
            assert process.stdin is not None
            with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError):
                await process.stdin.send(as_line(answer))
        elif kind == "response":  # the peer's caller learns why instead of waiting
            message = f"Result too large to send: {exc}"
            await peer.send(
                jsonrpc.error_response(request_id, jsonrpc.MESSAGE_TOO_LARGE, message, data)
            )


async def _cancel(process: Process, pending: Pending, reason: str) -> None:
    """Tell the process that the peer's requests still running are cancelled
    (``notifications/cancelled``), so that it stops their work; bounded, best effort."""
    if not pending or process.stdin is None:
        return
    with anyio.move_on_after(EXIT_GRACE), contextlib.suppress(Exception):
        for request_id in pending:
            params = {"requestId": request_id, "reason": reason}
            note = {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": params}
            await process.stdin.send(as_line(json.dumps(note)))
        logger.info("cancelled %d request(s) the peer left pending", len(pending))


async def stop(process: Process) -> None:
    """End a server process as the SDK does: close stdin, wait, terminate, kill (its whole
    process group on POSIX)."""
    if process.stdin is not None:
        with contextlib.suppress(Exception):
            await process.stdin.aclose()
    for action in (_terminate, _kill):
        with anyio.move_on_after(EXIT_GRACE):
            await process.wait()
            return
        try:
            action(process)
        except ProcessLookupError:
            return
    with anyio.move_on_after(EXIT_GRACE):
        await process.wait()


def _terminate(process: Process) -> None:
    if os.name == "posix":
        os.killpg(process.pid, signal.SIGTERM)
    else:
        process.terminate()


def _kill(process: Process) -> None:
    if os.name == "posix":
        os.killpg(process.pid, signal.SIGKILL)
    else:
        process.kill()


def _json(payload: str | bytes | bytearray) -> object:
    """A message parsed for the gate; what is not JSON passes as ``None`` (the server
    answers it as it would)."""
    try:
        return json.loads(payload)
    except (ValueError, RecursionError):
        return None
