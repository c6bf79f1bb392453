"""The engine interface: what mcp-webrtc needs of a WebRTC implementation.

An engine wraps one peer connection with one data channel. The peer
(:mod:`mcp_webrtc.peer`) drives it from :class:`~mcp_webrtc._core.connection.Connection`'s
rules; the engine reports what happens through :class:`EngineEvents`, synchronously, from
its own callbacks (never raising into them). Two engines exist: ``aiortc`` (pure Python,
everywhere) and ``libwebrtc`` (Chrome's engine through PyPI ``wrtc``, much faster).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from .._core.connection import ConnectSnapshot
from .._core.signals import CandidateSignal


class EngineEvents(Protocol):
    """What an engine tells the peer. Called from the engine's callbacks; must not raise."""

    def channel_open(self) -> None: ...

    def channel_closed(self) -> None: ...

    def message(self, data: str | bytes) -> None: ...

    def drained(self) -> None:
        """The channel's buffer fell to the low-water mark."""

    def local_candidate(self, candidate: CandidateSignal | None) -> None:
        """A candidate gathered after the description was signaled; ``None`` at the end."""

    def failed(self) -> None:
        """ICE or DTLS failed: no connection (or no more)."""

    def closed(self) -> None:
        """The peer connection closed."""


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One side of the selected candidate pair."""

    type: str
    address: str
    port: int
    protocol: str


@dataclass(frozen=True, slots=True)
class PathInfo:
    """The selected candidate pair and its round trip, as the engine reports them."""

    local: Endpoint | None
    remote: Endpoint | None
    rtt: float | None


class Engine(Protocol):
    """One peer connection with one data channel (see the module docstring)."""

    #: ``aiortc`` or ``libwebrtc``.
    name: str

    async def offer(self, label: str) -> str:
        """Create the data channel and return the offer's SDP (with whatever candidates the
        engine gathered before it; the rest come as :meth:`EngineEvents.local_candidate`)."""

    async def answer(self, offer: str) -> str:
        """Apply the peer's offer; return the answer's SDP."""

    async def accept(self, answer: str) -> None:
        """Apply the peer's answer."""

    async def add_candidate(self, candidate: CandidateSignal) -> None:
        """Apply a trickled remote candidate; raises ``ValueError`` when it is unusable."""

    def send(self, frame: str | bytes) -> None:
        """Hand one frame to the channel; raises ``ConnectionError`` when it cannot."""

    @property
    def buffered_amount(self) -> int: ...

    @property
    def label(self) -> str | None:
        """The data channel's label, once there is a channel."""

    def snapshot(self) -> ConnectSnapshot:
        """Where the connection attempt stands (the remote candidate count is the peer's)."""

    async def probe(self) -> tuple[float | None, PathInfo]:
        """When the peer was last heard at the ICE level, as a ``time.monotonic()`` value
        (an answered consent check, or the engine's own checks; ``None``: not known now),
        and the selected pair and round trip, from one look at the engine."""

    async def path(self) -> PathInfo:
        """The selected candidate pair and round trip."""

    def hold_receiving(self, wait: Callable[[], Awaitable[None]]) -> bool:
        """Make the engine await ``wait()`` after each message it delivers, before it
        reads more from the network; ``False`` when the engine cannot."""

    async def close(self) -> None:
        """Close the channel and the connection (bounded by the caller)."""
