"""The libwebrtc engine: the WebRTC stack inside Chrome, through PyPI ``wrtc`` (``webrtc``).

ICE, DTLS and SCTP run in native threads; Python sees whole messages. Against aiortc:
every configured STUN and TURN server is used, candidates trickle out as they are
gathered, and a data channel moves several times more data per second on less CPU.

What it guarantees about local addresses: libwebrtc gathers on every interface (there is
no allow-list in its API); with ``host_candidates`` only the allowed host candidates are
*signaled*. Its connectivity checks may still leave from other local addresses, and the
peer can then learn those as peer-reflexive candidates: use ``ice_transport_policy=
"relay"`` when no local address may reach the peer. Loopback candidates exist only after
``webrtc.allow_loopback()``, which is process-wide and must come before the process's
first connection: it is called when ``host_candidates`` allows a loopback network.

What it cannot do: hold back a sender while the reader is behind (its API delivers every
message as it arrives), so ``max_receive_queue`` is not enforced on this engine.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
import time
from collections.abc import Awaitable, Callable
from typing import Any, Literal

import webrtc

from .._core.connection import ConnectSnapshot
from .._core.sdp import candidate_allowed
from .._core.signals import CandidateSignal
from ..exceptions import ConfigurationError
from ..options import IceServer, WebRTCOptions
from .base import Endpoint, EngineEvents, PathInfo

logger = logging.getLogger("mcp_webrtc.engines.libwebrtc")

_loopback_allowed = False


def wants_loopback(entries: tuple[str, ...] | None) -> bool:
    """Whether ``host_candidates`` allows a loopback network."""
    for entry in entries or ():
        try:
            if ipaddress.ip_network(entry, strict=False).is_loopback:
                return True
        except ValueError:
            if entry in ("lo", "lo0"):
                return True
    return False


def allow_loopback() -> None:
    """``webrtc.allow_loopback()``, once; a clear error when it comes too late."""
    global _loopback_allowed
    if _loopback_allowed:
        return
    try:  # even when WRTC_ALLOW_LOOPBACK=1: it counts only if set before wrtc was imported
        webrtc.allow_loopback()
    except webrtc.InvalidStateError as exc:
        if os.environ.get("WRTC_ALLOW_LOOPBACK") == "1":
            return  # connections exist: the variable allowed loopback as wrtc was imported
        raise ConfigurationError(
            "libwebrtc gathers loopback candidates only when allowed before the process's "
            "first connection: use host_candidates with a loopback network for the first "
            "connection too, or set WRTC_ALLOW_LOOPBACK=1 in the environment"
        ) from exc
    _loopback_allowed = True


def configuration(options: WebRTCOptions, servers: tuple[IceServer, ...]) -> Any:
    return webrtc.RTCConfiguration(
        ice_servers=[
            webrtc.RTCIceServer(urls=list(s.url_list), username=s.username, credential=s.credential)
            for s in servers
        ],
        ice_transport_policy=options.ice_transport_policy,
    )


class LibwebrtcEngine:
    """An :class:`~mcp_webrtc.engines.base.Engine` on libwebrtc."""

    name = "libwebrtc"

    def __init__(
        self,
        options: WebRTCOptions,
        servers: tuple[IceServer, ...],
        events: EngineEvents,
        keep_host: Callable[[str], bool] | None,
    ) -> None:
        if wants_loopback(options.host_candidates):
            allow_loopback()
        self._options = options
        self._events = events
        self._keep_host = keep_host
        self._turn_urls = tuple(u for s in servers for u in s.url_list if u.startswith("turn"))
        self._pc = webrtc.RTCPeerConnection(configuration(options, servers))
        self._pc.on("icecandidate", self._on_candidate)
        self._pc.on("connectionstatechange", self._on_state)
        self._pc.on("datachannel", lambda event: self._attach(event.channel))
        self._channel: Any = None
        self._local_candidates = 0
        #: Per candidate pair: packets and STUN messages received, and when counted.
        self._heard: dict[str, tuple[int, float]] = {}
        self._rtt: float | None = None

    # ---------------------------------------------------------------- negotiation

    async def offer(self, label: str) -> str:
        self._attach(self._pc.create_data_channel(label, webrtc.RTCDataChannelInit(ordered=True)))
        await self._pc.set_local_description(await self._pc.create_offer())
        return self._local_sdp()

    async def answer(self, offer: str) -> str:
        await self._description(offer, "offer")
        await self._pc.set_local_description(await self._pc.create_answer())
        return self._local_sdp()

    async def accept(self, answer: str) -> None:
        await self._description(answer, "answer")

    async def _description(self, sdp: str, kind: Literal["offer", "answer"]) -> None:
        description = webrtc.RTCSessionDescriptionInit(type=kind, sdp=sdp)
        try:
            await self._pc.set_remote_description(description)
        except (webrtc.OperationError, webrtc.InvalidAccessError, TypeError) as exc:
            raise ValueError(str(exc)) from exc

    def _local_sdp(self) -> str:
        description = self._pc.local_description
        assert description is not None
        sdp: str = description.sdp
        self._local_candidates += sdp.count("a=candidate:")
        return sdp

    async def add_candidate(self, candidate: CandidateSignal) -> None:
        index = candidate.sdp_mline_index
        if candidate.sdp_mid is None and index is None:
            index = 0
        init = webrtc.RTCIceCandidateInit(
            candidate=candidate.candidate, sdp_mid=candidate.sdp_mid, sdp_m_line_index=index
        )
        try:
            await self._pc.add_ice_candidate(init)
        except (webrtc.OperationError, webrtc.InvalidStateError, TypeError) as exc:
            raise ValueError(str(exc)) from exc

    def _on_candidate(self, event: Any) -> None:
        candidate = event.candidate
        if candidate is None or not candidate.candidate:
            self._events.local_candidate(None)  # gathering complete
            return
        if self._keep_host is not None and not candidate_allowed(
            candidate.candidate, self._keep_host
        ):
            return
        self._local_candidates += 1
        self._events.local_candidate(
            CandidateSignal(candidate.candidate, candidate.sdp_mid, candidate.sdp_m_line_index)
        )

    # ---------------------------------------------------------------- the channel

    def _attach(self, channel: Any) -> None:
        if self._channel is not None:
            logger.warning("ignoring extra data channel %r from peer", channel.label)
            return
        self._channel = channel
        channel.buffered_amount_low_threshold = self._options.send_low_watermark
        channel.on("message", lambda event: self._events.message(event.data))
        channel.on("bufferedamountlow", lambda _event: self._events.drained())
        channel.on("close", lambda _event: self._events.channel_closed())
        if channel.ready_state == "open":
            self._events.channel_open()
        else:
            channel.on("open", lambda _event: self._events.channel_open())

    def send(self, frame: str | bytes) -> None:
        channel = self._channel
        if channel is None or channel.ready_state != "open":
            raise ConnectionError("the data channel is closed")
        try:
            channel.send(frame)
        except Exception as exc:  # InvalidStateError, OperationError
            raise ConnectionError(f"data channel send failed: {exc!r}") from exc

    @property
    def buffered_amount(self) -> int:
        return int(self._channel.buffered_amount) if self._channel is not None else 0

    @property
    def label(self) -> str | None:
        return str(self._channel.label) if self._channel is not None else None

    def hold_receiving(self, wait: Callable[[], Awaitable[None]]) -> bool:
        return False  # no receive flow control in libwebrtc's API (see the module docstring)

    # ---------------------------------------------------------------- state

    def _on_state(self, _event: Any) -> None:
        state = self._pc.connection_state
        if state == "failed":
            self._events.failed()
        elif state == "closed":
            self._events.closed()

    def snapshot(self) -> ConnectSnapshot:
        pc = self._pc
        sctp = pc.sctp
        dtls = str(sctp.transport.state) if sctp is not None else "new"
        return ConnectSnapshot(
            started=True,
            remote_description=pc.remote_description is not None,
            local_candidates=self._local_candidates,
            remote_candidates=0,
            gathered=pc.ice_gathering_state == "complete",
            ice_state=str(pc.ice_connection_state),
            dtls_state=dtls,
            turn_urls=self._turn_urls,
        )

    async def _selected_pair(self) -> tuple[Any, Any] | None:
        """The stats report and the selected candidate pair's stats, if there is one."""
        report = await self._pc.get_stats()
        for stats in report.values():
            selected: Any = getattr(stats, "selected_candidate_pair_id", None)
            if stats.type == "transport" and selected:
                pair = report.get(selected)
                if pair is not None:
                    return report, pair
        return None

    async def probe(self) -> tuple[float | None, PathInfo]:
        """From libwebrtc's own checks: its STUN consent checks (every ~1.5 s) and data
        arrive on the selected pair; when their count on that same pair grew since this
        pair was last read, the peer was heard in between, so it was alive at that
        earlier reading: that time is returned, never a later guess (which could credit a
        dead peer with life after its end). Counts are kept per pair: once the peer is
        gone, libwebrtc switches the selected pair back and forth, and comparing one
        pair's count with another's looked like life. One stats report (~1 ms of Python
        each) serves both answers."""
        found = await self._selected_pair()
        now = time.monotonic()
        if found is None:
            return None, PathInfo(None, None, self._rtt)
        report, pair = found
        count = int(
            (pair.responses_received or 0)
            + (pair.requests_received or 0)
            + (pair.packets_received or 0)
        )
        previous, since = self._heard.get(pair.id, (-1, 0.0))
        self._heard[pair.id] = (count, now)
        heard = since if 0 <= previous < count else None
        return heard, self._path(report, pair)

    async def path(self) -> PathInfo:
        found = await self._selected_pair()
        return self._path(*found) if found else PathInfo(None, None, self._rtt)

    def _path(self, report: Any, pair: Any) -> PathInfo:
        if pair.current_round_trip_time is not None:
            self._rtt = float(pair.current_round_trip_time)
        return PathInfo(
            _endpoint(report.get(pair.local_candidate_id)),
            _endpoint(report.get(pair.remote_candidate_id)),
            self._rtt,
        )

    async def close(self) -> None:
        if self._channel is not None:
            self._channel.close()
        self._pc.close()
        await asyncio.sleep(0)  # let libwebrtc's close events reach us before we return


def _endpoint(stats: Any) -> Endpoint | None:
    if stats is None:
        return None
    kind, address = str(stats.candidate_type), str(stats.address)
    return Endpoint(kind, address, int(stats.port), str(stats.protocol))
