"""The signaling side of one peer: descriptions and candidates both ways, and bye.

:class:`Negotiation` sends our description (with the capability line, and only the host
candidates allowed), trickles the engine's later candidates after it, applies the peer's
description and candidates (holding early ones), and reports what it learns to the peer
(:class:`Outcome`): a failure to connect, the peer leaving.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Literal, Protocol

from ._core.connection import Connection
from ._core.sdp import keep_candidates
from ._core.signals import (
    ByeSignal,
    CandidateSignal,
    DescriptionSignal,
    UnknownSignal,
    parse_signal,
    to_json_object,
)
from .engines.base import Engine
from .exceptions import ConnectError, ConnectFailureReason, PeerIdentityError, SignalingError
from .signaling import Signaling

logger = logging.getLogger("mcp_webrtc.peer")


class Outcome(Protocol):
    """What the negotiation tells its peer."""

    def connect_failed(self, error: BaseException) -> None: ...

    def went_away(self, reason: str) -> None: ...

    def diagnosis(self) -> tuple[ConnectFailureReason, str]: ...

    @property
    def connected(self) -> bool: ...


class Negotiation:
    """Offer/answer and candidates over ``signaling`` (see the module docstring)."""

    def __init__(
        self,
        signaling: Signaling,
        core: Connection,
        engine: Engine,
        outcome: Outcome,
        *,
        initiator: bool,
        keep_host: Callable[[str], bool] | None,
    ) -> None:
        self._signaling = signaling
        self._core = core
        self._engine = engine
        self._outcome = outcome
        self.initiator = initiator
        self._keep_host = keep_host
        self._described = False  # our description went out: trickled candidates may follow
        self._early: list[CandidateSignal | None] = []
        #: The peer said bye (then we do not).
        self.bye_received = False

    async def offer(self, label: str) -> None:
        await self._describe("offer", await self._engine.offer(label))

    async def _describe(self, kind: Literal["offer", "answer"], sdp: str) -> None:
        if self._keep_host is not None:
            sdp = keep_candidates(sdp, self._keep_host)
        description = DescriptionSignal(kind, self._core.local_description(sdp, kind))
        await self._signaling.send(to_json_object(description))
        self._described = True
        early, self._early = self._early, []
        for candidate in early:
            await self.signal_candidate(candidate)

    def held(self, candidate: CandidateSignal | None) -> bool:
        """Hold a candidate the engine gathered before our description went out; ``False``
        when it can be signaled now."""
        if self._described:
            return False
        self._early.append(candidate)
        return True

    async def signal_candidate(self, candidate: CandidateSignal | None) -> None:
        signal = candidate or CandidateSignal("", "0", 0)  # end-of-candidates
        try:
            await self._signaling.send(to_json_object(signal))
        except Exception as exc:
            logger.debug("could not signal a candidate: %r", exc)

    async def run(self) -> None:
        """Handle the peer's signals until the signaling channel ends."""
        try:
            while True:
                raw = await self._signaling.receive()
                if raw is None:
                    error = ConnectError(ConnectFailureReason.PEER_LEFT, "signaling closed")
                    self._outcome.connect_failed(error)
                    logger.debug("signaling closed")
                    return
                await self._handle(raw)
        except Exception as exc:
            if not self._outcome.connected:
                self._outcome.connect_failed(SignalingError(f"signaling failed: {exc!r}"))
            else:
                logger.info("signaling ended after connecting: %r", exc)

    async def _handle(self, raw: object) -> None:
        signal = parse_signal(raw)
        if isinstance(signal, CandidateSignal):
            await self._add_candidate(signal)
        elif isinstance(signal, DescriptionSignal):
            expected = "answer" if self.initiator else "offer"
            if signal.type != expected or self._core.remote is not None:
                logger.warning("ignoring a second %s (no renegotiation)", signal.type)
                return
            await self._apply_remote(signal)
        elif isinstance(signal, ByeSignal):
            self.bye_received = True
            why = "peer said bye" + (f": {signal.reason}" if signal.reason else "")
            reason, detail = self._outcome.diagnosis()
            if reason is not ConnectFailureReason.NO_LOCAL_CANDIDATES:
                reason = ConnectFailureReason.PEER_LEFT
            self._outcome.connect_failed(ConnectError(reason, f"{why}; {detail}"))
            self._outcome.went_away(why)
        elif isinstance(signal, UnknownSignal):
            logger.warning("ignoring unknown signal (%s): %.200r", signal.why, signal.raw)

    async def _apply_remote(self, signal: DescriptionSignal) -> None:
        try:  # an identity that does not verify: the engine never sees the description
            sdp, ignored = self._core.remote_description(signal.sdp, signal.type)
        except PeerIdentityError as exc:
            self._outcome.connect_failed(exc)
            return
        for note in ignored:
            logger.warning("ignoring a malformed attribute of the peer's %s: %s", signal.type, note)
        try:
            if self.initiator:
                await self._engine.accept(sdp)
            else:
                answer = await self._engine.answer(sdp)
        except ValueError as exc:  # the engine cannot parse it
            detail = f"the peer's {signal.type} could not be used: {exc}"
            reason = ConnectFailureReason.NO_REMOTE_DESCRIPTION
            self._outcome.connect_failed(ConnectError(reason, detail))
            return
        for candidate in self._core.held_candidates():
            await self._add_candidate(candidate)
        if self._core.remote_candidates == 0 and "a=end-of-candidates" in signal.sdp:
            self._outcome.connect_failed(ConnectError(*self._outcome.diagnosis()))
        if not self.initiator:
            await self._describe("answer", answer)

    async def _add_candidate(self, signal: CandidateSignal) -> None:
        if not signal.candidate:  # end-of-candidates: nothing more is coming
            if self._core.remote is not None and self._core.remote_candidates == 0:
                self._outcome.connect_failed(ConnectError(*self._outcome.diagnosis()))
            return
        if not self._core.remote_candidate(signal):
            return  # held until the description is set
        try:
            await self._engine.add_candidate(signal)
        except Exception as exc:
            logger.warning("ignoring unusable ICE candidate %r: %s", signal.candidate, exc)
            return
        self._core.candidate_applied()
