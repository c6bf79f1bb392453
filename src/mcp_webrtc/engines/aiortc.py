"""The aiortc engine: pure Python, on every platform.

What it guarantees about local addresses: with ``host_candidates``, only the allowed
addresses are gathered at all (aioice never binds the others), and only those are
signaled. Limits: one STUN and one TURN server (the first of each; a warning names the
others), every candidate gathered before the description leaves (no trickle out), and
SCTP in Python (about 10 MB/s). Private aiortc/aioice access lives in
:mod:`._aiortc_internals` only.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from aiortc import (
    RTCConfiguration,
    RTCDataChannel,
    RTCIceServer,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.rtcconfiguration import RTCIceTransportPolicy
from aiortc.sdp import candidate_from_sdp

from .._core.connection import ConnectSnapshot
from .._core.signals import CandidateSignal
from ..options import IceServer, WebRTCOptions
from . import _aiortc_internals as internals
from .base import EngineEvents, PathInfo

logger = logging.getLogger("mcp_webrtc.engines.aiortc")


def urls(servers: tuple[IceServer, ...], scheme: str) -> list[str]:
    return [u for s in servers for u in s.url_list if u.startswith(scheme)]


def configuration(options: WebRTCOptions, servers: tuple[IceServer, ...]) -> RTCConfiguration:
    """aiortc's configuration for ``servers`` (never None: aiortc would ask Google's STUN)."""
    for kind, found in (("STUN", urls(servers, "stun")), ("TURN", urls(servers, "turn"))):
        if len(found) > 1:
            logger.warning(
                "aiortc uses only the first %s server (%s); ignoring %s", kind, found[0], found[1:]
            )
    return RTCConfiguration(
        iceServers=[
            RTCIceServer(urls=list(s.url_list), username=s.username, credential=s.credential)
            for s in servers
        ],
        iceTransportPolicy=RTCIceTransportPolicy(options.ice_transport_policy),
    )


class AiortcEngine:
    """An :class:`~mcp_webrtc.engines.base.Engine` on aiortc."""

    name = "aiortc"

    def __init__(
        self,
        options: WebRTCOptions,
        servers: tuple[IceServer, ...],
        events: EngineEvents,
        keep_host: Callable[[str], bool] | None,
    ) -> None:
        self._options = options
        self._events = events
        self._keep_host = keep_host
        self._turn_urls = tuple(urls(servers, "turn"))
        self._pc = RTCPeerConnection(configuration(options, servers))
        self._pc.on("connectionstatechange", self._on_state)
        self._pc.on("icegatheringstatechange", self._on_gathering)
        self._pc.on("datachannel", self._attach)
        self._channel: RTCDataChannel | None = None
        self._local_candidates = 0
        self._rtt: float | None = None
        self._gathering: asyncio.Future[None] | None = None
        self._last_arrival: Callable[[], float] = lambda: 0.0  # replaced once transports exist

    # ---------------------------------------------------------------- negotiation

    async def offer(self, label: str) -> str:
        self._attach(self._pc.createDataChannel(label, ordered=True))
        self._instrument()
        return await self._describe(self._pc.createOffer)

    async def answer(self, offer: str) -> str:
        await self._pc.setRemoteDescription(RTCSessionDescription(offer, "offer"))
        self._instrument()  # the transports exist from now on
        return await self._describe(self._pc.createAnswer)

    def _instrument(self) -> None:
        internals.stop_consent_after_close(self._pc)
        self._last_arrival = internals.note_arrivals(self._pc)

    async def _describe(self, create: Callable[[], Awaitable[RTCSessionDescription]]) -> str:
        """Set the local description, gathering every candidate. Gathering runs in a task
        of its own that a caller giving up does not cancel: cancelled midway, aioice would
        drop sockets it has opened but not yet recorded; :meth:`close` closes them once it
        ends."""

        async def describe() -> None:
            with internals.host_candidate_filter(self._keep_host):
                await self._pc.setLocalDescription(await create())

        gathering = self._gathering = asyncio.ensure_future(describe())
        gathering.add_done_callback(_retrieved)
        await asyncio.shield(gathering)
        sdp: str = self._pc.localDescription.sdp
        return sdp

    async def accept(self, answer: str) -> None:
        await self._pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))

    async def add_candidate(self, candidate: CandidateSignal) -> None:
        parsed = candidate_from_sdp(candidate.candidate.removeprefix("candidate:"))
        parsed.sdpMid = candidate.sdp_mid
        parsed.sdpMLineIndex = candidate.sdp_mline_index
        if parsed.sdpMid is None and parsed.sdpMLineIndex is None:
            parsed.sdpMLineIndex = 0
        await self._pc.addIceCandidate(parsed)

    # ---------------------------------------------------------------- the channel

    def _attach(self, channel: RTCDataChannel) -> None:
        if self._channel is not None:
            logger.warning("ignoring extra data channel %r from peer", channel.label)
            return
        self._channel = channel
        channel.bufferedAmountLowThreshold = self._options.send_low_watermark
        channel.on("message", self._events.message)
        channel.on("bufferedamountlow", self._events.drained)
        channel.on("close", self._events.channel_closed)
        if channel.readyState == "open":
            self._opened()
        else:
            channel.on("open", self._opened)

    def _opened(self) -> None:
        granted = internals.set_receive_buffer(self._pc, self._options.udp_receive_buffer)
        logger.debug("data channel open; UDP receive buffer %s bytes", granted)
        self._events.channel_open()

    def send(self, frame: str | bytes) -> None:
        channel = self._channel
        if channel is None or channel.readyState != "open":
            raise ConnectionError("the data channel is closed")
        try:
            channel.send(frame)
        except Exception as exc:  # InvalidStateError, or ValueError from a size check
            raise ConnectionError(f"data channel send failed: {exc!r}") from exc

    @property
    def buffered_amount(self) -> int:
        return self._channel.bufferedAmount if self._channel is not None else 0

    @property
    def label(self) -> str | None:
        return self._channel.label if self._channel is not None else None

    def hold_receiving(self, wait: Callable[[], Awaitable[None]]) -> bool:
        internals.gate_receive(self._pc, wait)
        return True

    # ---------------------------------------------------------------- state

    def _on_gathering(self) -> None:
        # Counted the moment gathering completes: aiortc drops the local candidates again
        # as soon as ICE fails (e.g. the peer declared it has none).
        if self._pc.iceGatheringState == "complete" and self._pc.sctp is not None:
            gatherer = self._pc.sctp.transport.transport.iceGatherer
            self._local_candidates = len(gatherer.getLocalCandidates())

    def _on_state(self) -> None:
        state = self._pc.connectionState
        if state == "failed":
            self._events.failed()
        elif state == "closed":
            self._events.closed()

    def snapshot(self) -> ConnectSnapshot:
        pc = self._pc
        dtls = pc.sctp.transport.state if pc.sctp is not None else "new"
        return ConnectSnapshot(
            started=True,
            remote_description=pc.remoteDescription is not None,
            local_candidates=self._local_candidates,
            remote_candidates=0,
            gathered=pc.iceGatheringState == "complete",
            ice_state=pc.iceConnectionState,
            dtls_state=dtls,
            turn_urls=self._turn_urls,
        )

    async def probe(self) -> tuple[float | None, PathInfo]:
        """A consent check; the peer's last packet counts as hearing it too (a peer busy
        receiving answers checks late, but its acknowledgements keep coming)."""
        rtt = await internals.consent_check(self._pc)
        heard = self._last_arrival() or None
        if rtt is not None:
            self._rtt, heard = rtt, time.monotonic()
        return heard, await self.path()

    async def path(self) -> PathInfo:
        pair = internals.selected_pair(self._pc)
        local, remote = pair if pair else (None, None)
        return PathInfo(local, remote, self._rtt)

    async def close(self) -> None:
        if self._channel is not None:
            self._channel.close()
        if self._gathering is not None and not self._gathering.done():
            internals.close_again_after(self._pc, self._gathering)
        await self._pc.close()


def _retrieved(task: asyncio.Future[None]) -> None:
    """Mark the outcome of a task nobody may await as seen (no "never retrieved" log)."""
    if not task.cancelled():
        task.exception()
