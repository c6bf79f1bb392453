"""Signal objects exchanged over a signaling channel (simple-peer JSON shapes).

``{"type": "offer" | "answer", "sdp": "..."}``
``{"type": "candidate", "candidate": {"candidate": "candidate:...", "sdpMid": "0",
"sdpMLineIndex": 0}}``
``{"type": "bye", "reason": "..."}`` (ours: the sender is leaving; ``reason`` is optional)

Anything else parses to :class:`UnknownSignal`; the caller logs and ignores it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

JSONObject = dict[str, Any]


@dataclass(frozen=True, slots=True)
class DescriptionSignal:
    type: Literal["offer", "answer"]
    sdp: str


@dataclass(frozen=True, slots=True)
class CandidateSignal:
    """A trickled ICE candidate. ``candidate`` is the SDP attribute value without ``a=``;
    an empty string means end-of-candidates."""

    candidate: str
    sdp_mid: str | None
    sdp_mline_index: int | None


@dataclass(frozen=True, slots=True)
class ByeSignal:
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class UnknownSignal:
    raw: object
    why: str


Signal = DescriptionSignal | CandidateSignal | ByeSignal | UnknownSignal


def parse_signal(raw: object) -> Signal:
    """Parse a signal object (or its JSON text). Never raises."""
    obj = raw
    if isinstance(raw, str | bytes):
        try:
            obj = json.loads(raw)
        except ValueError:
            return UnknownSignal(raw, "not JSON")
    if not isinstance(obj, dict):
        return UnknownSignal(raw, "not a JSON object")
    kind = obj.get("type")
    if kind in ("offer", "answer"):
        sdp = obj.get("sdp")
        if not isinstance(sdp, str) or not sdp:
            return UnknownSignal(raw, f"{kind} without an sdp string")
        return DescriptionSignal(kind, sdp)
    if kind == "bye":
        reason = obj.get("reason")
        return ByeSignal(reason if isinstance(reason, str) else None)
    if kind == "candidate" or (kind is None and "candidate" in obj):
        return _parse_candidate(raw, obj)
    return UnknownSignal(raw, f"unknown type {kind!r}")


def _parse_candidate(raw: object, obj: JSONObject) -> Signal:
    inner = obj.get("candidate")
    if isinstance(inner, dict):  # simple-peer / RTCIceCandidate.toJSON()
        text, mid, index = inner.get("candidate"), inner.get("sdpMid"), inner.get("sdpMLineIndex")
    else:  # flat form, as aiortc's contrib signaling writes it
        text, mid, index = (
            inner,
            obj.get("sdpMid", obj.get("id")),
            obj.get("sdpMLineIndex", obj.get("label")),
        )
    if text is None:
        text = ""
    if not isinstance(text, str):
        return UnknownSignal(raw, "candidate is not a string")
    if mid is not None and not isinstance(mid, str):
        mid = str(mid)
    if index is not None and (not isinstance(index, int) or isinstance(index, bool)):
        return UnknownSignal(raw, "sdpMLineIndex is not an integer")
    text = text.strip()
    if text.startswith("a="):
        text = text[2:]
    return CandidateSignal(text, mid, index)


def to_json_object(signal: DescriptionSignal | CandidateSignal | ByeSignal) -> JSONObject:
    """The wire object for ``signal`` (simple-peer shapes)."""
    if isinstance(signal, DescriptionSignal):
        return {"type": signal.type, "sdp": signal.sdp}
    if isinstance(signal, CandidateSignal):
        return {
            "type": "candidate",
            "candidate": {
                "candidate": signal.candidate,
                "sdpMid": signal.sdp_mid,
                "sdpMLineIndex": signal.sdp_mline_index,
            },
        }
    out: JSONObject = {"type": "bye"}
    if signal.reason:
        out["reason"] = signal.reason
    return out
