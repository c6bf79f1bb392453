"""Data-channel framing: whole JSON-RPC messages and chunk frames (see docs/protocol.md).

Pure code: no I/O, no aiortc, no MCP SDK. The adapter in :mod:`mcp_webrtc.peer` feeds
received data-channel messages into a :class:`FrameDecoder` and takes outgoing frames
from a :class:`FrameScheduler`.

Wire summary
------------
* A data-channel **text** message is one whole UTF-8 JSON-RPC message.
* A **binary** message whose first byte can start a JSON text (``{``, ``[``, white space,
  or a UTF-8 byte-order mark) is one whole JSON-RPC message as UTF-8.
* Any other binary message is a chunk frame; its first byte is the frame type:

  ``0x01`` FIRST: ``u32`` message id, ``u64`` total payload length, then payload bytes.
  ``0x02`` NEXT:  ``u32`` message id, then payload bytes.
  ``0x03`` ABORT: ``u32`` message id; the sender gave up on that message.

  All integers are big-endian. A message is complete when the bytes received for its id
  reach the total announced in FIRST. Frames of different ids may interleave.
"""

from __future__ import annotations

import contextlib
import struct
from collections import deque
from dataclasses import dataclass

FRAME_FIRST = 0x01
FRAME_NEXT = 0x02
FRAME_ABORT = 0x03

_FIRST = struct.Struct("!BIQ")
_NEXT = struct.Struct("!BI")
FIRST_HEADER_SIZE = _FIRST.size  # 13
NEXT_HEADER_SIZE = _NEXT.size  # 5

#: First bytes that mark a binary message as a whole JSON text rather than a chunk frame.
JSON_START_BYTES = frozenset(b"{[ \t\r\n\xef")

MAX_MESSAGE_ID = 0xFFFFFFFF


class FrameError(ValueError):
    """A received frame violates the framing rules. ``request_id`` is set when known."""

    def __init__(self, reason: str, *, request_id: str | int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.request_id = request_id


class OversizeMessage(ValueError):
    """A received message is larger than the local limit; it was (or is being) discarded."""

    def __init__(self, size: int, limit: int, head: bytes) -> None:
        super().__init__(f"incoming message of {size} bytes exceeds the limit of {limit} bytes")
        self.size = size
        self.limit = limit
        self.head = head


# --------------------------------------------------------------------------- encoding


def first_frame(message_id: int, total: int, payload: bytes | memoryview) -> bytes:
    return _FIRST.pack(FRAME_FIRST, message_id, total) + payload


def next_frame(message_id: int, payload: bytes | memoryview) -> bytes:
    return _NEXT.pack(FRAME_NEXT, message_id) + payload


def abort_frame(message_id: int) -> bytes:
    return _NEXT.pack(FRAME_ABORT, message_id)


# --------------------------------------------------------------------------- scheduling


@dataclass(eq=False)
class Outgoing:
    """One message queued for sending: a whole text frame, or chunk frames of ``data``."""

    data: str | bytes
    size: int
    chunk_size: int | None = None  # None: one whole text frame
    message_id: int | None = None
    offset: int = 0
    finished: bool = False
    aborted: bool = False

    @property
    def started(self) -> bool:
        return self.offset > 0

    def next_frame(self) -> str | bytes:
        if self.chunk_size is None or isinstance(self.data, str):
            self.offset = self.size
            self.finished = True
            return self.data
        assert self.message_id is not None
        view = memoryview(self.data)[self.offset : self.offset + self.chunk_size]
        if self.offset == 0:
            frame = first_frame(self.message_id, self.size, view)
        else:
            frame = next_frame(self.message_id, view)
        self.offset += len(view)
        self.finished = self.offset >= self.size
        return frame


class FrameScheduler:
    """Chooses the next frame to send.

    Whole (single-frame) messages go first, in the order they were queued, so a small
    message waits behind at most the one chunk already handed to the channel. Chunked
    messages share the rest round-robin, one frame at a time; the frames of one message
    always leave in order.
    """

    def __init__(self) -> None:
        self._whole: deque[Outgoing] = deque()
        self._chunked: deque[Outgoing] = deque()
        self._next_id = 0

    def __len__(self) -> int:
        return len(self._whole) + len(self._chunked)

    def push_whole(self, text: str, size: int) -> Outgoing:
        """Queue a message that goes as one text frame."""
        item = Outgoing(data=text, size=size)
        self._whole.append(item)
        return item

    def push_chunked(self, data: bytes, chunk_size: int) -> Outgoing:
        """Queue a message that goes as chunk frames of at most ``chunk_size`` payload bytes."""
        if chunk_size <= 0:
            raise ValueError("chunk_size must be positive")
        self._next_id = (self._next_id + 1) & MAX_MESSAGE_ID
        item = Outgoing(data=data, size=len(data), chunk_size=chunk_size, message_id=self._next_id)
        self._chunked.append(item)
        return item

    def cancel(self, item: Outgoing) -> bytes | None:
        """Withdraw ``item``. Returns an ABORT frame to send if part of it already left."""
        if item.finished or item.aborted:
            return None
        item.aborted = True
        for queue in (self._whole, self._chunked):
            with contextlib.suppress(ValueError):
                queue.remove(item)
        if item.started and item.message_id is not None:
            return abort_frame(item.message_id)
        return None

    def pop_frame(self) -> tuple[str | bytes, Outgoing] | None:
        """Take the next frame to send, or ``None`` when nothing is queued."""
        if self._whole:
            item = self._whole.popleft()
            return item.next_frame(), item
        if not self._chunked:
            return None
        item = self._chunked.popleft()
        frame = item.next_frame()
        if not item.finished:
            self._chunked.append(item)
        return frame, item


# --------------------------------------------------------------------------- decoding


@dataclass(slots=True)
class _Partial:
    total: int
    buffer: bytearray | None  # None while discarding an oversize message
    received: int = 0


class FrameDecoder:
    """Reassembles chunk frames and checks limits.

    :meth:`feed` returns the complete message payload (``str`` or ``bytes``), or ``None`` when
    the frame only advanced a partial message. It raises :class:`FrameError` for a malformed
    frame and :class:`OversizeMessage` once for a message above ``max_message_size`` (the rest
    of that message's frames are then dropped silently). Memory held is at most
    ``max_partial`` partial messages of at most ``max_message_size`` bytes each.
    """

    def __init__(self, max_message_size: int, max_partial: int = 64) -> None:
        self.max_message_size = max_message_size
        self.max_partial = max_partial
        self._partials: dict[int, _Partial] = {}

    @property
    def buffered_bytes(self) -> int:
        return sum(p.received for p in self._partials.values() if p.buffer is not None)

    def feed(self, data: str | bytes) -> str | bytes | None:
        if isinstance(data, str):
            size = len(data.encode("utf-8")) if len(data) * 4 > self.max_message_size else 0
            if size > self.max_message_size:
                raise OversizeMessage(size, self.max_message_size, data[:4096].encode("utf-8"))
            return data
        if not data:
            raise FrameError("empty binary frame")
        kind = data[0]
        if kind in JSON_START_BYTES:
            if len(data) > self.max_message_size:
                raise OversizeMessage(len(data), self.max_message_size, bytes(data[:4096]))
            return data
        if kind == FRAME_FIRST:
            return self._first(data)
        if kind == FRAME_NEXT:
            return self._next(data)
        if kind == FRAME_ABORT:
            if len(data) != NEXT_HEADER_SIZE:
                raise FrameError("ABORT frame has a wrong length")
            _, message_id = _NEXT.unpack_from(data)
            self._partials.pop(message_id, None)
            return None
        raise FrameError(f"unknown frame type 0x{kind:02x}")

    def _first(self, data: bytes) -> str | bytes | None:
        if len(data) < FIRST_HEADER_SIZE:
            raise FrameError("FIRST frame is shorter than its header")
        _, message_id, total = _FIRST.unpack_from(data)
        payload = memoryview(data)[FIRST_HEADER_SIZE:]
        if message_id in self._partials:
            del self._partials[message_id]
            raise FrameError(f"FIRST frame for message {message_id}, which is still open")
        if len(payload) > total:
            raise FrameError("FIRST frame carries more bytes than its announced total")
        if total > self.max_message_size:
            if len(payload) < total:
                self._partials[message_id] = _Partial(total, None, len(payload))
            raise OversizeMessage(total, self.max_message_size, bytes(payload[:4096]))
        if len(payload) == total:
            return bytes(payload)
        if len(self._partials) >= self.max_partial:
            raise FrameError(f"more than {self.max_partial} chunked messages in flight")
        buffer = bytearray(total)
        buffer[: len(payload)] = payload
        self._partials[message_id] = _Partial(total, buffer, len(payload))
        return None

    def _next(self, data: bytes) -> str | bytes | None:
        if len(data) < NEXT_HEADER_SIZE:
            raise FrameError("NEXT frame is shorter than its header")
        _, message_id = _NEXT.unpack_from(data)
        partial = self._partials.get(message_id)
        if partial is None:
            raise FrameError(f"NEXT frame for unknown message {message_id}")
        payload = memoryview(data)[NEXT_HEADER_SIZE:]
        end = partial.received + len(payload)
        if end > partial.total:
            del self._partials[message_id]
            raise FrameError(f"message {message_id} overruns its announced total")
        if partial.buffer is not None:
            partial.buffer[partial.received : end] = payload
        partial.received = end
        if end < partial.total:
            return None
        del self._partials[message_id]
        if partial.buffer is None:
            return None
        return bytes(partial.buffer)
