"""The rules of one mcp-webrtc connection, without I/O (docs/protocol.md, §3 and §5).

Bytes and events in, actions out, like websockets' ``Protocol``: an engine adapter feeds
every data-channel message to :meth:`Connection.receive` and hands the channel what
:meth:`Connection.next_frame` returns; the peer takes complete messages from
:meth:`Connection.next_message`. Here live the send policy (whole or chunked, the peer's
limits, whether to compress), the receive rules with every error answer, the bound on
what waits for the reader, early candidates held until their description, and the
diagnosis of a connection that did not come up. No engine, no clock of its own.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from . import jsonrpc
from .deflate import choose_level
from .errors import (
    ConnectFailureReason,
    FrameError,
    MessageTooLargeError,
    OversizeMessageError,
)
from .framing import (
    FIRST_HEADER_SIZE,
    FrameDecoder,
    FrameScheduler,
    Outgoing,
    Payload,
)
from .identity import (
    Identity,
    Kind,
    PublicKey,
    check_expected,
    sign_description,
    verify_description,
)
from .ratelimit import TokenBucket
from .sdp import (
    RemoteCapabilities,
    add_capability,
    count_candidates,
    drop_bad_size_lines,
    parse_capabilities,
)
from .signals import CandidateSignal

#: Error answers to a peer's bad input: bursts of this many, then this many per second;
#: beyond, they are dropped (and counted), so bad input cannot make us flood the peer.
ANSWER_BURST = 50
ANSWER_RATE = 20.0
#: The largest frame sent to a peer whose SCTP stack announces no limit (``0``).
UNLIMITED_SCTP_FRAME = 256 * 1024
#: The fewest bytes drained from the channel's buffer that make a sample of its rate.
RATE_SAMPLE_MIN = 64 * 1024
#: Bytes of a message sampled to decide whether compressing it pays.
DEFLATE_SAMPLE = 16 * 1024


@dataclass(frozen=True, slots=True)
class Settings:
    """What the connection rules need of :class:`~mcp_webrtc.options.WebRTCOptions`."""

    max_message_size: int
    chunk_size: int
    compression: bool
    max_receive_queue: int
    #: What the channel moves, in bytes per second, until measured (the engine's typical
    #: rate): compressing a message must be faster than sending what it saves.
    channel_rate: float
    #: Signs our descriptions (§8); ``None``: unsigned.
    identity: Identity | None = None
    #: Keys of which the peer must prove one (empty: any peer).
    expect_peer_keys: tuple[PublicKey, ...] = ()


class Connection:
    """One connection's rules and state (see the module docstring)."""

    def __init__(self, settings: Settings, clock: Callable[[], float] = time.perf_counter) -> None:
        self.settings = settings
        self._clock = clock
        self.remote: RemoteCapabilities | None = None
        self._scheduler = FrameScheduler()
        self._decoder = FrameDecoder(settings.max_message_size)
        self._answers = TokenBucket(ANSWER_RATE, ANSWER_BURST)
        self.answers_dropped = 0
        self._received: deque[Payload] = deque()
        self.queued_bytes = 0
        self._held: list[CandidateSignal] = []
        self.remote_candidates = 0
        self.bytes_sent = self.bytes_received = 0
        #: Bytes per second the channel moves: the engine's typical rate until measured.
        self.channel_rate = settings.channel_rate
        self._rate_measured = False
        self.messages_sent = self.messages_received = 0
        #: The key the peer's description was signed with (verified), if any.
        self.peer_key: PublicKey | None = None
        self._local_sdp = self._remote_sdp = ""

    # ---------------------------------------------------------------- negotiation

    def local_description(self, sdp: str, kind: Kind = "offer") -> str:
        """The SDP to signal: the engine's, with our capability line (§3), signed by our
        identity when we have one (§8)."""
        settings = self.settings
        sdp = add_capability(sdp, settings.max_message_size, deflate=settings.compression)
        if settings.identity is not None:
            offer = self._remote_sdp if kind == "answer" else None
            sdp = sign_description(settings.identity, kind, sdp, offer)
        self._local_sdp = sdp
        return sdp

    def remote_description(self, sdp: str, kind: Kind = "answer") -> tuple[str, tuple[str, ...]]:
        """Take the peer's description: returns the SDP to give the engine (malformed size
        attributes removed) and notes on what was ignored, for a log line. Raises
        :class:`PeerIdentityError` when its signature is bad or not by an expected key."""
        offer = self._local_sdp if kind == "answer" else None
        key = verify_description(kind, sdp, offer)
        check_expected(key, self.settings.expect_peer_keys)
        self.peer_key = key
        self._remote_sdp = sdp
        self.remote = parse_capabilities(sdp)
        self.remote_candidates += count_candidates(sdp)
        return drop_bad_size_lines(sdp), self.remote.ignored

    def remote_candidate(self, candidate: CandidateSignal) -> bool:
        """Whether to apply a trickled candidate now; ``False`` holds it until the remote
        description is set (:meth:`held_candidates`). End-of-candidates is never applied."""
        if not candidate.candidate:
            return False
        if self.remote is None:
            self._held.append(candidate)
            return False
        return True

    def held_candidates(self) -> list[CandidateSignal]:
        held, self._held = self._held, []
        return held

    def candidate_applied(self) -> None:
        self.remote_candidates += 1

    # ---------------------------------------------------------------- sending

    @property
    def sctp_limit(self) -> int:
        """The largest data-channel message the peer's SCTP stack takes."""
        assert self.remote is not None
        return self.remote.sctp_max_message_size or UNLIMITED_SCTP_FRAME

    @property
    def peer_limit(self) -> int:
        """The largest message the peer accepts (0: no limit announced)."""
        remote = self.remote
        if remote is None:
            return 0
        if remote.chunking:
            return remote.max_message_size or 0
        return remote.sctp_max_message_size

    @property
    def compressing(self) -> bool:
        """Whether large messages to the peer may be raw-DEFLATE compressed."""
        return bool(self.settings.compression and self.remote and self.remote.deflate)

    def send(self, text: str) -> Outgoing:
        """Queue one message (docs/protocol.md §5, sender rules). Raises
        :class:`MessageTooLargeError`; nothing is queued then."""
        # JSON is mostly ASCII (base64 blobs always): then its size is its length and it is
        # never copied whole (chunks are encoded as they are sent).
        data: str | bytes = text if text.isascii() else text.encode("utf-8")
        size = len(data)
        if size > self.settings.max_message_size:
            raise MessageTooLargeError(size, self.settings.max_message_size, "this side's")
        remote = self.remote
        assert remote is not None, "send() before the remote description"
        if remote.chunking:
            limit = remote.max_message_size
            if limit and size > limit:
                raise MessageTooLargeError(size, limit, "the peer's")
            chunk = min(self.settings.chunk_size, self.sctp_limit - FIRST_HEADER_SIZE)
            if size <= chunk:
                return self._scheduler.push_whole(text, size)
            level = None
            if self.compressing:
                sample = data[:DEFLATE_SAMPLE]
                level = choose_level(sample, self.channel_rate, self._clock)
            return self._scheduler.push_chunked(data, chunk, deflate_level=level)
        if remote.sctp_max_message_size and size > remote.sctp_max_message_size:
            raise MessageTooLargeError(
                size,
                remote.sctp_max_message_size,
                "the peer's (it does not reassemble chunked messages)",
            )
        return self._scheduler.push_whole(text, size)

    def answer(self, text: str) -> bool:
        """Queue an error answer to the peer's bad input, within the rate limit. Returns
        whether it was queued (else it was dropped and counted)."""
        if self.remote is None or not self._answers.allow(self._clock()):
            self.answers_dropped += 1
            return False
        try:
            self.send(text)
        except MessageTooLargeError:  # pragma: no cover - error answers are small
            return False
        return True

    def next_frame(self) -> tuple[str | bytes, Outgoing] | None:
        """The next frame to hand the channel, or ``None`` when nothing waits."""
        return self._scheduler.pop_frame()

    def channel_moved(self, size: int, seconds: float) -> None:
        """The channel moved ``size`` bytes out of its full buffer in ``seconds``: its
        measured rate (a moving average, the first sample replacing the engine's typical
        rate) decides compression from now on. A link slower than loopback makes
        compressing pay where the typical rate said it would not, and the reverse."""
        if size < RATE_SAMPLE_MIN or seconds <= 0:
            return
        rate = size / seconds
        if self._rate_measured:
            rate = 0.75 * self.channel_rate + 0.25 * rate
        self.channel_rate, self._rate_measured = rate, True

    def frame_sent(self, frame: str | bytes, item: Outgoing) -> bool:
        """Count a frame the channel took; ``True`` when it was its message's last."""
        self.bytes_sent += len(frame)
        if item.finished:
            item.delivered = True
            self.messages_sent += 1
        return item.finished

    def withdraw(self, item: Outgoing) -> bytes | None:
        """Withdraw a queued message; returns the ABORT frame to send when part of it left."""
        return self._scheduler.cancel(item)

    @property
    def frames_waiting(self) -> bool:
        return len(self._scheduler) > 0

    # ---------------------------------------------------------------- receiving

    def receive(self, data: str | bytes) -> str | None:
        """Take one data-channel message. Never raises: bad input is answered (§5), and
        what was wrong is returned, for a log line (``None`` when all was well)."""
        self.bytes_received += len(data)
        try:
            payload = self._decoder.feed(data)
        except OversizeMessageError as exc:
            request_id = jsonrpc.sniff_request_id(exc.head)
            message = f"Message too large: {exc.size} bytes, the limit is {exc.limit} bytes"
            data_field = {"size": exc.size, "limit": exc.limit}
            answer = jsonrpc.error_response(
                request_id, jsonrpc.MESSAGE_TOO_LARGE, message, data_field
            )
            return self._reject(answer, f"discarding {exc} (request id {request_id!r})")
        except FrameError as exc:
            answer = jsonrpc.error_response(None, jsonrpc.PARSE_ERROR, f"Parse error: {exc}")
            return self._reject(answer, f"malformed frame: {exc}")
        except Exception as exc:  # a bug must not end the session: answer and go on
            answer = jsonrpc.error_response(None, jsonrpc.PARSE_ERROR, f"Parse error: {exc!r}")
            return self._reject(answer, f"could not handle a frame: {exc!r}")
        if payload is not None:
            self.messages_received += 1
            self._received.append(payload)
            self.queued_bytes += len(payload)
        return None

    def _reject(self, answer: str, why: str) -> str | None:
        if self.answer(answer):
            return why
        if self.answers_dropped % 1000 == 1:
            return f"a flood: {self.answers_dropped} error answers dropped so far"
        return None

    def next_message(self) -> Payload | None:
        """The oldest complete message not yet taken, or ``None``."""
        if not self._received:
            return None
        payload = self._received.popleft()
        self.queued_bytes -= len(payload)
        return payload

    @property
    def reader_behind(self) -> bool:
        """More than ``max_receive_queue`` bytes wait: stop taking data from the channel."""
        return self.queued_bytes > self.settings.max_receive_queue

    @property
    def reader_caught_up(self) -> bool:
        """At most half of ``max_receive_queue`` waits: take data again."""
        return self.queued_bytes <= self.settings.max_receive_queue // 2

    @property
    def partial_bytes(self) -> int:
        """Bytes of chunked messages received but not complete yet."""
        return self._decoder.buffered_bytes


@dataclass(frozen=True, slots=True)
class ConnectSnapshot:
    """Where a connection attempt stands, as an engine sees it."""

    #: The peer connection exists (signaling connected).
    started: bool
    #: The remote description was applied.
    remote_description: bool
    local_candidates: int
    remote_candidates: int
    #: Local gathering has completed.
    gathered: bool
    #: ``new``, ``checking``, ``connected``, ``completed``, ``failed``...
    ice_state: str
    #: ``new``, ``connecting``, ``connected``, ``failed``...
    dtls_state: str
    #: TURN URLs in use (named when no candidate could be gathered).
    turn_urls: tuple[str, ...] = ()


def diagnose(snapshot: ConnectSnapshot, *, initiator: bool) -> tuple[ConnectFailureReason, str]:
    """Why a connection did not come up, from where the attempt stands."""
    if not snapshot.started:
        return ConnectFailureReason.NO_REMOTE_DESCRIPTION, "signaling did not connect"
    local = snapshot.local_candidates
    detail = (
        f"local candidates: {local}, remote candidates: {snapshot.remote_candidates}, "
        f"ICE: {snapshot.ice_state}, DTLS: {snapshot.dtls_state}"
    )
    if initiator and local == 0 and snapshot.gathered:
        return _no_local(snapshot, detail)  # offered nothing to try
    if not snapshot.remote_description:
        return ConnectFailureReason.NO_REMOTE_DESCRIPTION, detail
    # An answerer whose offer holds no candidate may gather none itself (aiortc stops ICE
    # at once), so then the remote side is the cause.
    if snapshot.remote_candidates == 0 and (local > 0 or not initiator):
        return ConnectFailureReason.NO_REMOTE_CANDIDATES, detail
    if local == 0:
        return _no_local(snapshot, detail)
    if snapshot.ice_state not in ("connected", "completed"):
        return ConnectFailureReason.ICE_FAILED, detail
    if snapshot.dtls_state != "connected":
        return ConnectFailureReason.DTLS_FAILED, detail
    return ConnectFailureReason.CHANNEL_NOT_OPENED, detail


def _no_local(snapshot: ConnectSnapshot, detail: str) -> tuple[ConnectFailureReason, str]:
    if snapshot.turn_urls:
        detail += (
            f"; the TURN server {snapshot.turn_urls[0]} gave no relayed candidate: "
            "unreachable, credentials rejected or expired, or certificate not trusted"
        )
    return ConnectFailureReason.NO_LOCAL_CANDIDATES, detail
