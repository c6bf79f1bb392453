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

  ``0x01`` FIRST: ``u32`` message id, ``u64`` message size, then payload bytes.
  ``0x04`` FIRST_DEFLATE: as FIRST, but the payloads of the message's frames form one raw
  DEFLATE stream (RFC 1951) that inflates to the message; the size is the inflated size.
  ``0x02`` NEXT: ``u32`` message id, then payload bytes.
  ``0x03`` ABORT: ``u32`` message id; the sender gave up on that message.

  All integers are big-endian. A plain message is complete when its payloads reach the
  size announced in FIRST; a deflated one when its DEFLATE stream ends (and it must then
  have inflated to exactly the announced size). Frames of different ids may interleave.
"""

from __future__ import annotations

import contextlib
import struct
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Any

from . import deflate as _deflate
from .errors import FrameError, OversizeMessageError

FRAME_FIRST = 0x01
FRAME_NEXT = 0x02
FRAME_ABORT = 0x03
FRAME_FIRST_DEFLATE = 0x04

#: A complete message as the decoder hands it over: a text, or UTF-8 JSON bytes (a chunked
#: message comes as the very buffer it was reassembled in, not a copy).
Payload = str | bytes | bytearray

_FIRST = struct.Struct("!BIQ")
_NEXT = struct.Struct("!BI")
FIRST_HEADER_SIZE = _FIRST.size  # 13
NEXT_HEADER_SIZE = _NEXT.size  # 5

#: First bytes that mark a binary message as a whole JSON text rather than a chunk frame.
JSON_START_BYTES = frozenset(b"{[ \t\r\n\xef")

MAX_MESSAGE_ID = 0xFFFFFFFF
#: Bytes of a message's start kept for error reports (to find a request's id).
HEAD_SIZE = 4096


# --------------------------------------------------------------------------- encoding


def first_frame(
    message_id: int, size: int, payload: bytes | memoryview, *, deflate: bool = False
) -> bytes:
    kind = FRAME_FIRST_DEFLATE if deflate else FRAME_FIRST
    return _FIRST.pack(kind, message_id, size) + payload


def next_frame(message_id: int, payload: bytes | memoryview) -> bytes:
    return _NEXT.pack(FRAME_NEXT, message_id) + payload


def abort_frame(message_id: int) -> bytes:
    return _NEXT.pack(FRAME_ABORT, message_id)


#: ``data`` as one raw DEFLATE stream, as the sender produces it (for tests and tools).
deflate = _deflate.deflate


# --------------------------------------------------------------------------- scheduling


@dataclass(eq=False)
class Outgoing:
    """One message queued for sending: a whole text frame, or chunk frames of ``data``.

    With a ``deflate_level`` the chunk payloads are produced lazily by a streaming
    compressor, a chunk at a time, so compression overlaps with sending and never holds a
    second copy.
    """

    data: str | bytes
    size: int
    chunk_size: int | None = None  # None: one whole text frame
    message_id: int | None = None
    deflate_level: int | None = None  # None: plain
    offset: int = 0  # bytes of ``data`` consumed
    started: bool = False
    finished: bool = False  # its last frame has been produced
    delivered: bool = False  # the channel took its last frame (set by the sender)
    aborted: bool = False
    _pending: bytearray = field(default_factory=bytearray, repr=False)
    _compressor: Any = field(default=None, repr=False)

    def next_frame(self) -> str | bytes:
        first, self.started = not self.started, True
        if self.chunk_size is None:
            self.offset = self.size
            self.finished = True
            return self.data
        assert self.message_id is not None
        deflated = self.deflate_level is not None
        payload = self._next_compressed() if deflated else self._next_plain()
        if first:
            return first_frame(self.message_id, self.size, payload, deflate=deflated)
        return next_frame(self.message_id, payload)

    def _piece(self, size: int) -> bytes | memoryview:
        """The message's next ``size`` bytes (an ASCII text is encoded a piece at a time:
        the whole message is never copied)."""
        start, self.offset = self.offset, min(self.offset + size, self.size)
        if isinstance(self.data, str):
            return self.data[start : self.offset].encode("ascii")
        return memoryview(self.data)[start : self.offset]

    def _next_plain(self) -> bytes | memoryview:
        assert self.chunk_size is not None
        piece = self._piece(self.chunk_size)
        self.finished = self.offset >= self.size
        return piece

    def _next_compressed(self) -> bytes:
        assert self.chunk_size is not None
        if self._compressor is None:
            assert self.deflate_level is not None
            self._compressor = _deflate.compressor(self.deflate_level)
        while len(self._pending) < self.chunk_size and self.offset < self.size:
            piece = self._piece(self.chunk_size)
            self._pending += self._compressor.compress(piece)
            if self.offset >= self.size:
                self._pending += self._compressor.flush()
        if self.size == 0 and not self._pending and not self.finished:
            self._pending += self._compressor.flush()
        payload = bytes(self._pending[: self.chunk_size])
        del self._pending[: self.chunk_size]
        self.finished = self.offset >= self.size and not self._pending
        return payload


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

    def push_chunked(
        self, data: str | bytes, chunk_size: int, *, deflate_level: int | None = None
    ) -> Outgoing:
        """Queue a message that goes as chunk frames of at most ``chunk_size`` payload bytes,
        raw-DEFLATE-compressed at ``deflate_level`` when one is given. ``data`` is UTF-8
        bytes, or a text that is pure ASCII (then its bytes are its characters)."""
        if isinstance(data, str) and not data.isascii():
            raise ValueError("a text to chunk must be ASCII; encode it first")
        if chunk_size <= 0:
            raise ValueError("chunk_size must be positive")
        self._next_id = (self._next_id + 1) & MAX_MESSAGE_ID
        item = Outgoing(
            data=data,
            size=len(data),
            chunk_size=chunk_size,
            message_id=self._next_id,
            deflate_level=deflate_level,
        )
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
    size: int  # announced message size
    buffer: bytearray
    received: int = 0  # wire payload bytes (plain) so far
    inflater: Any = None


class FrameDecoder:
    """Reassembles (and inflates) chunk frames and checks limits.

    :meth:`feed` returns the complete message payload (``str`` or ``bytes``), or ``None`` when
    the frame only advanced a partial message. It raises :class:`FrameError` for a malformed
    frame and :class:`OversizeMessageError` once for a message above ``max_message_size``.
    Either way the rest of that message's frames are then dropped silently, so one broken
    message costs one error answer, and a frame without progress (an empty NEXT) ends its
    message instead of costing work again and again. Memory held grows with the bytes
    actually received, and is at most ``max_partial`` messages of at most
    ``max_message_size`` bytes each; an inflating message can never exceed its announced
    size.
    """

    def __init__(self, max_message_size: int, max_partial: int = 64) -> None:
        self.max_message_size = max_message_size
        self.max_partial = max_partial
        self._partials: dict[int, _Partial] = {}
        self._discarding: OrderedDict[int, int | None] = OrderedDict()  # id -> bytes left

    @property
    def buffered_bytes(self) -> int:
        return sum(len(p.buffer) for p in self._partials.values())

    def feed(self, data: str | bytes) -> Payload | None:
        if isinstance(data, str):
            if len(data) > self.max_message_size // 4:  # cheap check first
                size = len(data.encode("utf-8"))
                if size > self.max_message_size:
                    head = data[:HEAD_SIZE].encode("utf-8")
                    raise OversizeMessageError(size, self.max_message_size, head)
            return data
        if not data:
            raise FrameError("empty binary frame")
        kind = data[0]
        if kind in JSON_START_BYTES:
            if len(data) > self.max_message_size:
                head = bytes(data[:HEAD_SIZE])
                raise OversizeMessageError(len(data), self.max_message_size, head)
            return _without_bom(data)
        if kind in (FRAME_FIRST, FRAME_FIRST_DEFLATE):
            return self._first(data, deflated=kind == FRAME_FIRST_DEFLATE)
        if kind == FRAME_NEXT:
            return self._next(data)
        if kind == FRAME_ABORT:
            if len(data) != NEXT_HEADER_SIZE:
                raise FrameError("ABORT frame has a wrong length")
            _, message_id = _NEXT.unpack_from(data)
            self._partials.pop(message_id, None)
            self._discarding.pop(message_id, None)
            return None
        raise FrameError(f"unknown frame type 0x{kind:02x}")

    def _fail(self, message_id: int, reason: str) -> FrameError:
        """Drop a broken message: its later frames are discarded silently (one error
        answer per message, not one per frame)."""
        self._partials.pop(message_id, None)
        self._discard(message_id, None)
        return FrameError(f"message {message_id}: {reason}")

    def _discard(self, message_id: int, left: int | None) -> None:
        self._discarding[message_id] = left
        while len(self._discarding) > 1024:
            self._discarding.popitem(last=False)

    def _first(self, data: bytes, *, deflated: bool) -> Payload | None:
        if len(data) < FIRST_HEADER_SIZE:
            raise FrameError("FIRST frame is shorter than its header")
        _, message_id, size = _FIRST.unpack_from(data)
        payload = memoryview(data)[FIRST_HEADER_SIZE:]
        self._discarding.pop(message_id, None)
        if message_id in self._partials:
            raise self._fail(message_id, "FIRST frame for a message that is still open")
        if not deflated and len(payload) > size:
            raise self._fail(message_id, "FIRST frame carries more bytes than its size")
        if size > self.max_message_size:
            head = bytes(payload[:HEAD_SIZE])
            if deflated:
                try:  # only to find the request's id; bad data just leaves it unknown
                    head = _deflate.decompressor().decompress(head, HEAD_SIZE)
                except _deflate.error:
                    head = b""
                self._discard(message_id, None)
            elif len(payload) < size:
                self._discard(message_id, size - len(payload))
            raise OversizeMessageError(size, self.max_message_size, head)
        if len(self._partials) >= self.max_partial:
            raise self._fail(message_id, f"more than {self.max_partial} messages in flight")
        partial = _Partial(size, bytearray())
        if deflated:
            partial.inflater = _deflate.decompressor()
        self._partials[message_id] = partial
        return self._append(message_id, partial, payload)

    def _next(self, data: bytes) -> Payload | None:
        if len(data) < NEXT_HEADER_SIZE:
            raise FrameError("NEXT frame is shorter than its header")
        _, message_id = _NEXT.unpack_from(data)
        payload = memoryview(data)[NEXT_HEADER_SIZE:]
        partial = self._partials.get(message_id)
        if partial is not None and not payload:
            # Senders never make empty NEXT frames: a flood of them would cost work per
            # frame without progress. The message is discarded, later frames silently.
            raise self._fail(message_id, "NEXT frame without payload")
        if partial is None:
            if message_id in self._discarding:
                left = self._discarding[message_id]
                if left is not None:
                    left -= len(payload)
                    if left <= 0:
                        del self._discarding[message_id]
                    else:
                        self._discarding[message_id] = left
                return None
            raise FrameError(f"NEXT frame for unknown message {message_id}")
        return self._append(message_id, partial, payload)

    def _append(self, message_id: int, partial: _Partial, payload: memoryview) -> bytearray | None:
        inflater = partial.inflater
        if inflater is None:
            end = partial.received + len(payload)
            if end > partial.size:
                raise self._fail(message_id, "overruns its announced size")
            partial.buffer += payload
            partial.received = end
            done = end == partial.size
        else:
            room = partial.size - len(partial.buffer)
            try:
                out = inflater.decompress(payload, room + 1)
            except _deflate.error as exc:
                raise self._fail(message_id, f"invalid DEFLATE data ({exc})") from None
            if len(out) > room or inflater.unconsumed_tail or inflater.unused_data:
                raise self._fail(message_id, "inflates beyond its announced size")
            partial.buffer += out
            done = inflater.eof
            if done and len(partial.buffer) != partial.size:
                raise self._fail(message_id, "inflates to less than its announced size")
        if not done:
            return None
        del self._partials[message_id]
        if partial.buffer.startswith(_BOM):
            del partial.buffer[: len(_BOM)]
        return partial.buffer


_BOM = b"\xef\xbb\xbf"


def _without_bom(data: bytes) -> bytes:
    """JSON parsers disagree on a leading UTF-8 byte-order mark; the spec allows it."""
    return data[len(_BOM) :] if data.startswith(_BOM) else data
