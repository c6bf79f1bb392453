"""Raw DEFLATE (RFC 1951) for chunked messages, and when compressing one pays.

zlib-ng (``pip install 'mcp-webrtc[fast]'``) is used when installed: it deflates 2 to
2.5 times faster than zlib at the same level and inflates 1.5 times faster; the stream is
the same format, so any inflater reads it (zlib, Node, a browser's
``DecompressionStream("deflate-raw")``). Without it, the standard library's zlib.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from types import ModuleType
from typing import Any

_zlib: ModuleType
try:
    from zlib_ng import zlib_ng as _zlib
except ImportError:  # pragma: no cover - depends on the installed extras
    _zlib = zlib

#: zlib's wbits for a raw DEFLATE stream: no header, no checksum.
_RAW = -15
#: The levels tried, fastest first: level 1 for channels faster than deflating, level 2
#: (zlib-ng: JSON text to 39 % instead of 51 %, at 150 instead of 270 MB/s) for slower ones.
LEVELS = (1, 2)
#: Compressing must make sending this much faster.
MARGIN = 1.1
#: How much faster a sample deflates than the whole message: 16 KiB stay in the CPU's
#: caches (measured 1.3 to 1.9 times; zlib-ng's level 2 on base64: 125 vs 71 MB/s).
SAMPLE_OPTIMISM = 1.5
#: The error the inflater raises on invalid data.
error: type[Exception] = _zlib.error  # the same class as zlib.error without zlib-ng
#: Which library deflates: ``zlib-ng`` or ``zlib``.
LIBRARY = "zlib" if _zlib is zlib else "zlib-ng"


def compressor(level: int = LEVELS[0]) -> Any:
    """A streaming raw-DEFLATE compressor (``compress(data)``, ``flush()``)."""
    return _zlib.compressobj(level, _zlib.DEFLATED, _RAW)


def decompressor() -> Any:
    """A streaming raw-DEFLATE inflater (``decompress(data, max_length)``, ``eof``,
    ``unconsumed_tail``, ``unused_data``)."""
    return _zlib.decompressobj(_RAW)


def deflate(data: bytes, level: int = LEVELS[0]) -> bytes:
    """``data`` as one raw DEFLATE stream, as the sender produces it."""
    engine = compressor(level)
    return bytes(engine.compress(data) + engine.flush())


def choose_level(
    sample: bytes | memoryview | str, channel_rate: float, clock: Callable[[], float]
) -> int | None:
    """The level that sends a message fastest, judged from a sample of its start, or
    ``None`` when sending it plain is as fast.

    Deflating is counted as time spent before sending, not beside it: with aiortc the
    channel's SCTP runs on the same thread, and with libwebrtc on a busy machine the same
    cores. A compressed byte costs ``1 / deflate_rate + ratio / channel_rate`` seconds, a
    plain one ``1 / channel_rate``; compressing must save a tenth. So JSON text is
    compressed on a 20 MB/s channel (aiortc on loopback: 2x faster) and on any network
    link, base64 only on links slower than about 10 MB/s, and neither on a loopback
    libwebrtc channel (130 MB/s), where compressing made transfers 15 % slower.
    """
    data = sample.encode("ascii") if isinstance(sample, str) else bytes(sample)
    if not data:
        return None
    plain = 1 / channel_rate
    best: tuple[float, int] | None = None
    for level in LEVELS:
        started = clock()
        ratio = len(deflate(data, level)) / len(data)
        spent = clock() - started
        deflating = len(data) / spent / SAMPLE_OPTIMISM if spent > 0 else float("inf")
        cost = 1 / deflating + ratio * plain
        if best is None or cost < best[0]:
            best = (cost, level)
        if deflating <= channel_rate:
            break  # deflating alone takes longer than sending plain: slower levels too
    assert best is not None
    return best[1] if best[0] * MARGIN < plain else None
