"""Signaling: how offers, answers, candidates and bye travel between the two peers.

Any object with ``connect``, ``send``, ``receive`` and ``close`` coroutines is a
:class:`Signaling`. Signals are JSON objects in simple-peer's shapes (see
:mod:`mcp_webrtc._core.signals` and docs/protocol.md). aiortc's own ``BaseSignaling``
classes (``TcpSocketSignaling``, ``UnixSocketSignaling``, ``CopyPasteSignaling``) are
accepted too: :func:`as_signaling` wraps them.
"""

from __future__ import annotations

import json
import logging
import math
from typing import Any, Protocol, runtime_checkable

import anyio
from aiortc import RTCIceCandidate, RTCSessionDescription
from aiortc.contrib.signaling import BYE, BaseSignaling
from aiortc.sdp import candidate_from_sdp, candidate_to_sdp
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from .exceptions import SignalingError

logger = logging.getLogger("mcp_webrtc.signaling")

JSONObject = dict[str, Any]


@runtime_checkable
class Signaling(Protocol):
    """A signaling channel to exactly one peer.

    ``receive`` returns the next signal object, or ``None`` once the channel is closed.
    ``send`` may be called before ``connect`` completes; implementations buffer such sends.
    """

    async def connect(self) -> None: ...

    async def send(self, signal: JSONObject) -> None: ...

    async def receive(self) -> JSONObject | None: ...

    async def close(self) -> None: ...


class MemorySignaling:
    """In-process signaling, for tests and for two peers in one program.

    ``MemorySignaling.create_pair()`` returns two connected endpoints. Every signal is
    copied through JSON, as on a real wire; ``receive`` waits without polling.
    """

    def __init__(
        self,
        outbox: MemoryObjectSendStream[str],
        inbox: MemoryObjectReceiveStream[str],
    ) -> None:
        self._outbox = outbox
        self._inbox = inbox

    @classmethod
    def create_pair(cls) -> tuple[MemorySignaling, MemorySignaling]:
        a_send, b_receive = anyio.create_memory_object_stream[str](math.inf)
        b_send, a_receive = anyio.create_memory_object_stream[str](math.inf)
        return cls(a_send, a_receive), cls(b_send, b_receive)

    async def connect(self) -> None:
        return None

    async def send(self, signal: JSONObject) -> None:
        try:
            self._outbox.send_nowait(json.dumps(signal))
        except (anyio.ClosedResourceError, anyio.BrokenResourceError) as exc:
            raise SignalingError("memory signaling is closed") from exc

    async def receive(self) -> JSONObject | None:
        try:
            text = await self._inbox.receive()
        except (anyio.EndOfStream, anyio.ClosedResourceError):
            return None
        value: JSONObject = json.loads(text)
        return value

    async def close(self) -> None:
        await self._outbox.aclose()
        await self._inbox.aclose()


class AiortcSignaling:
    """Adapts an aiortc ``BaseSignaling`` object to :class:`Signaling`.

    The first ``receive`` retries a refused connection (``TcpSocketSignaling`` and
    ``UnixSocketSignaling`` let whoever sends first listen), until the caller's timeout.
    """

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self._received_once = False

    async def connect(self) -> None:
        await self.inner.connect()

    async def send(self, signal: JSONObject) -> None:
        kind = signal.get("type")
        obj: object
        if kind in ("offer", "answer"):
            obj = RTCSessionDescription(sdp=signal["sdp"], type=kind)
        elif kind == "candidate":
            inner = signal["candidate"]
            text = inner["candidate"]
            if not text:
                return  # aiortc signaling has no end-of-candidates object
            cand: RTCIceCandidate = candidate_from_sdp(text.removeprefix("candidate:"))
            cand.sdpMid = inner.get("sdpMid")
            cand.sdpMLineIndex = inner.get("sdpMLineIndex")
            obj = cand
        elif kind == "bye":
            obj = BYE
        else:
            raise SignalingError(f"aiortc signaling cannot carry a {kind!r} signal")
        await self.inner.send(obj)

    async def receive(self) -> JSONObject | None:
        delay = 0.01
        while True:
            try:
                obj = await self.inner.receive()
                break
            except (ConnectionRefusedError, FileNotFoundError):
                if self._received_once:
                    raise
                await anyio.sleep(delay)  # the other side is not listening yet
                delay = min(delay * 2, 0.25)
        self._received_once = True
        if obj is None:
            return None
        if isinstance(obj, RTCSessionDescription):
            return {"type": obj.type, "sdp": obj.sdp}
        if isinstance(obj, RTCIceCandidate):
            return {
                "type": "candidate",
                "candidate": {
                    "candidate": "candidate:" + candidate_to_sdp(obj),
                    "sdpMid": obj.sdpMid,
                    "sdpMLineIndex": obj.sdpMLineIndex,
                },
            }
        if obj is BYE:
            return {"type": "bye"}
        logger.warning("ignoring unknown object from aiortc signaling: %r", obj)
        return {"type": "unknown", "repr": repr(obj)}

    async def close(self) -> None:
        await self.inner.close()


def as_signaling(obj: object) -> Signaling:
    """Return ``obj`` as a :class:`Signaling`, wrapping aiortc signaling objects."""
    if isinstance(obj, BaseSignaling):
        return AiortcSignaling(obj)
    if isinstance(obj, Signaling):
        return obj
    raise TypeError(
        f"{type(obj).__name__} is not a Signaling (needs async connect/send/receive/close) "
        "nor an aiortc BaseSignaling"
    )
