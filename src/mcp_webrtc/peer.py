"""The aiortc adapter: one peer connection, one data channel, mcp-webrtc framing on top.

:func:`open_peer` negotiates over a :class:`~mcp_webrtc.signaling.Signaling`, waits for the
data channel to open (or raises :class:`~mcp_webrtc.exceptions.ConnectError` with the
reason), then yields a :class:`DataChannelPeer` that sends and receives whole messages of
any size. Leaving the context closes everything within ``options.close_timeout``.

This layer knows nothing of MCP: payloads are JSON texts. :mod:`mcp_webrtc.transport` turns
them into SDK messages.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Literal

import anyio
from aiortc import (
    RTCConfiguration,
    RTCDataChannel,
    RTCIceServer,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.rtcconfiguration import RTCIceTransportPolicy
from aiortc.sdp import candidate_from_sdp
from anyio.abc import TaskGroup

from . import _internals
from ._core import jsonrpc
from ._core.framing import (
    FIRST_HEADER_SIZE,
    FrameDecoder,
    FrameScheduler,
    Outgoing,
    Payload,
)
from ._core.ratelimit import TokenBucket
from ._core.sdp import (
    RemoteCapabilities,
    add_capability,
    count_candidates,
    drop_bad_size_lines,
    parse_capabilities,
)
from ._core.signals import (
    ByeSignal,
    CandidateSignal,
    DescriptionSignal,
    UnknownSignal,
    parse_signal,
    to_json_object,
)
from .exceptions import (
    ConnectError,
    ConnectFailureReason,
    ConnectTimeoutError,
    FrameError,
    MessageTooLargeError,
    OversizeMessageError,
    PeerGoneError,
    SignalingError,
)
from .options import IceServer, WebRTCOptions
from .signaling import Signaling, as_signaling

logger = logging.getLogger("mcp_webrtc.peer")

CLOSED_LOCALLY = "closed locally"
#: Why a peer is gone when its channel closed: a peer that stops says bye through
#: signaling and closes the channel; whichever arrives first names the end.
PEER_CLOSED = "the peer closed the data channel"
#: Error answers to a peer's bad input: bursts of this many, then this many per second;
#: beyond, they are dropped (and counted in the log), so bad input cannot make us flood.
ANSWER_BURST = 50
ANSWER_RATE = 20.0


@dataclass(frozen=True, slots=True)
class ConnectionInfo:
    """A snapshot of a live connection (see :meth:`DataChannelPeer.info`)."""

    #: ``host``, ``srflx``, ``prflx`` or ``relay``; ``None`` before nomination.
    local_candidate_type: str | None
    local_address: tuple[str, int] | None
    remote_candidate_type: str | None
    remote_address: tuple[str, int] | None
    #: Transport of the selected pair as seen by ICE (``udp`` or ``tcp``).
    protocol: str | None
    #: Round trip of the latest ICE consent check, in seconds.
    rtt: float | None
    bytes_sent: int
    bytes_received: int
    messages_sent: int
    messages_received: int
    channel_label: str
    #: Whether the peer reassembles chunk frames (it announced ``a=x-mcp-webrtc``).
    peer_chunking: bool
    #: The largest message the peer accepts, in bytes (0: no limit announced).
    peer_max_message_size: int
    #: Whether large messages to the peer are raw-DEFLATE compressed.
    compression: bool


def _urls(servers: tuple[IceServer, ...], scheme: str) -> list[str]:
    return [u for s in servers for u in s.url_list if u.startswith(scheme)]


def _ice_configuration(options: WebRTCOptions, servers: tuple[IceServer, ...]) -> RTCConfiguration:
    """aiortc's configuration for ``servers`` (ours first, then the signaling's)."""
    for kind, urls in (("STUN", _urls(servers, "stun")), ("TURN", _urls(servers, "turn"))):
        if len(urls) > 1:
            logger.warning(
                "aiortc uses only the first %s server (%s); ignoring %s", kind, urls[0], urls[1:]
            )
    return RTCConfiguration(
        iceServers=[
            RTCIceServer(urls=list(s.url_list), username=s.username, credential=s.credential)
            for s in servers
        ],
        iceTransportPolicy=RTCIceTransportPolicy(options.ice_transport_policy),
    )


class DataChannelPeer:
    """A connected peer. Create with :func:`open_peer`."""

    def __init__(self, signaling: Signaling, options: WebRTCOptions, initiator: bool) -> None:
        self.options = options
        self.initiator = initiator
        self._signaling = signaling
        self._pc: RTCPeerConnection | None = None  # created once signaling is connected
        self._channel: RTCDataChannel | None = None
        self._label = options.channel_label or secrets.token_hex(20)
        self._remote: RemoteCapabilities | None = None
        self._local_candidates = 0
        self._remote_candidates = 0
        self._turn_urls: list[str] = []
        self._pending_candidates: list[CandidateSignal] = []
        self._decoder = FrameDecoder(options.max_message_size)
        self._scheduler = FrameScheduler()
        self._done: dict[Outgoing, asyncio.Event] = {}
        self._wake = asyncio.Event()
        self._drained = asyncio.Event()
        self._ready = asyncio.Event()  # channel open, or connecting failed
        self._connect_error: BaseException | None = None
        self._gone = asyncio.Event()
        self._gone_reason = ""
        self._bye_received = False
        self._incoming_send, self._incoming = anyio.create_memory_object_stream[Payload](math.inf)
        self._queued_bytes = 0  # of complete messages waiting in _incoming
        self._room = asyncio.Event()  # set while _queued_bytes is below the high watermark
        self._room.set()
        self._answers = TokenBucket(ANSWER_RATE, ANSWER_BURST)
        self._answers_dropped = 0
        self._last_alive = time.monotonic()
        self._rtt: float | None = None
        self.bytes_sent = self.bytes_received = 0
        self.messages_sent = self.messages_received = 0

    # ------------------------------------------------------------------ public

    @property
    def pc(self) -> RTCPeerConnection:
        """The aiortc peer connection (exists once signaling has connected)."""
        if self._pc is None:
            raise RuntimeError("not connected yet")
        return self._pc

    @property
    def gone(self) -> bool:
        return self._gone.is_set()

    @property
    def gone_reason(self) -> str:
        return self._gone_reason

    async def wait_gone(self) -> None:
        await self._gone.wait()

    def info(self) -> ConnectionInfo:
        pair = _internals.selected_pair(self._pc)
        local, remote = pair if pair else (None, None)
        return ConnectionInfo(
            local_candidate_type=local.type if local else None,
            local_address=(local.address, local.port) if local else None,
            remote_candidate_type=remote.type if remote else None,
            remote_address=(remote.address, remote.port) if remote else None,
            protocol=local.protocol if local else None,
            rtt=self._rtt,
            bytes_sent=self.bytes_sent,
            bytes_received=self.bytes_received,
            messages_sent=self.messages_sent,
            messages_received=self.messages_received,
            channel_label=self._label,
            peer_chunking=bool(self._remote and self._remote.chunking),
            peer_max_message_size=self._peer_limit(),
            compression=bool(self.options.compression and self._remote and self._remote.deflate),
        )

    def _peer_limit(self) -> int:
        remote = self._remote
        if remote is None:
            return 0
        if remote.chunking:
            return remote.max_message_size or 0
        return remote.sctp_max_message_size

    def _sctp_limit(self) -> int:
        assert self._remote is not None
        return self._remote.sctp_max_message_size or 256 * 1024

    async def send(self, text: str) -> None:
        """Send one message and wait until the channel took its last frame.

        Raises :class:`MessageTooLargeError` (nothing was sent) or :class:`PeerGoneError`.
        Cancelling the call withdraws the message; a peer that already received part of
        it is told to discard that part.
        """
        if self.gone:
            raise PeerGoneError(self._gone_reason)
        item = self._enqueue(text)
        done = self._done[item] = asyncio.Event()
        self._wake.set()
        try:
            await done.wait()
        except BaseException:
            abort = self._scheduler.cancel(item)
            if abort is not None and not self.gone:
                self._send_frame(abort)
            raise
        finally:
            self._done.pop(item, None)
        if not item.delivered:
            raise PeerGoneError(self._gone_reason)

    def send_soon(self, text: str) -> None:
        """Queue an error answer to the peer without waiting. Never raises.

        Answers are rate-limited (:data:`ANSWER_BURST`, :data:`ANSWER_RATE`): a peer
        flooding bad input gets the first answers, the rest are dropped and counted.
        """
        if self.gone:
            return
        if not self._answers.allow(time.monotonic()):
            self._answers_dropped += 1
            if self._answers_dropped % 1000 == 1:
                logger.warning(
                    "peer floods bad input: %d error answers dropped so far",
                    self._answers_dropped,
                )
            return
        try:
            self._enqueue(text)
        except MessageTooLargeError:  # pragma: no cover - error answers are small
            logger.warning("dropping an answer larger than the peer accepts")
            return
        self._wake.set()

    def _enqueue(self, text: str) -> Outgoing:
        # JSON is mostly ASCII (base64 blobs always): then its size is its length and it is
        # never copied whole (chunks are encoded as they are sent).
        data: str | bytes = text if text.isascii() else text.encode("utf-8")
        size = len(data)
        if size > self.options.max_message_size:
            raise MessageTooLargeError(size, self.options.max_message_size, "this side's")
        assert self._remote is not None
        sctp_limit = self._sctp_limit()
        if self._remote.chunking:
            limit = self._remote.max_message_size
            if limit and size > limit:
                raise MessageTooLargeError(size, limit, "the peer's")
            chunk = min(self.options.chunk_size, sctp_limit - FIRST_HEADER_SIZE)
            if size <= chunk:
                return self._scheduler.push_whole(text, size)
            deflate = self.options.compression and self._remote.deflate
            return self._scheduler.push_chunked(data, chunk, compress=deflate)
        if self._remote.sctp_max_message_size and size > self._remote.sctp_max_message_size:
            raise MessageTooLargeError(
                size,
                self._remote.sctp_max_message_size,
                "the peer's (it does not reassemble chunked messages)",
            )
        return self._scheduler.push_whole(text, size)

    # ------------------------------------------------------------------ sending

    def _send_frame(self, frame: str | bytes) -> bool:
        channel = self._channel
        if channel is None or channel.readyState != "open":
            self._mark_gone("data channel closed")
            return False
        try:
            channel.send(frame)
        except Exception as exc:  # InvalidStateError, or ValueError from a size check
            self._mark_gone(f"data channel send failed: {exc!r}")
            return False
        self.bytes_sent += len(frame)
        return True

    async def _sender(self) -> None:
        """Hands queued frames to the channel until the peer is gone. Shielded: when the
        caller's scope is cancelled (a server stopping), what the MCP session still writes
        on its way out (error answers to pending requests) is sent, and the close flushes
        the queue; the loop ends when the close marks the peer gone."""
        assert self._channel is not None
        channel = self._channel
        high = self.options.send_high_watermark
        with anyio.CancelScope(shield=True):
            await self._send_until_gone(channel, high)
        self._release_senders()

    async def _send_until_gone(self, channel: RTCDataChannel, high: int) -> None:
        while not self.gone:
            if channel.bufferedAmount > high:  # wait *before* taking a frame: a frame
                self._drained.clear()  # taken is sent at once, never held across an await
                await self._drained.wait()
                continue
            popped = self._scheduler.pop_frame()
            if popped is None:
                self._wake.clear()
                await self._wake.wait()
                continue
            frame, item = popped
            if not self._send_frame(frame):
                break
            if item.finished:
                item.delivered = True
                self.messages_sent += 1
                done = self._done.get(item)
                if done is not None:
                    done.set()

    def _release_senders(self) -> None:
        for done in list(self._done.values()):
            done.set()

    # ------------------------------------------------------------------ receiving

    def _on_message(self, data: str | bytes) -> None:
        # Called synchronously by aiortc: anything escaping here would tear down the DTLS
        # transport, so every failure becomes an answer to the peer.
        try:
            self._receive(data)
        except Exception as exc:
            logger.exception("could not handle a frame from the peer")
            self.send_soon(
                jsonrpc.error_response(None, jsonrpc.PARSE_ERROR, f"Parse error: {exc!r}")
            )

    def _receive(self, data: str | bytes) -> None:
        self._last_alive = time.monotonic()
        self.bytes_received += len(data)
        try:
            payload = self._decoder.feed(data)
        except OversizeMessageError as exc:
            request_id = jsonrpc.sniff_request_id(exc.head)
            logger.warning("discarding incoming message: %s (request id %r)", exc, request_id)
            self.send_soon(
                jsonrpc.error_response(
                    request_id,
                    jsonrpc.MESSAGE_TOO_LARGE,
                    f"Message too large: {exc.size} bytes, the limit is {exc.limit} bytes",
                    {"size": exc.size, "limit": exc.limit},
                )
            )
            return
        except FrameError as exc:
            logger.warning("malformed frame from peer: %s", exc.reason)
            self.send_soon(
                jsonrpc.error_response(None, jsonrpc.PARSE_ERROR, f"Parse error: {exc.reason}")
            )
            return
        if payload is None:
            return
        self.messages_received += 1
        # When the consumer already left, the connection is closing: drop the message.
        with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError):
            self._incoming_send.send_nowait(payload)
            self._queued_bytes += len(payload)
            if self._queued_bytes > self.options.max_receive_queue:
                self._room.clear()  # the engine stops reading until the reader catches up

    async def receive(self) -> Payload:
        """The next complete message from the peer (a JSON text, as ``str`` or UTF-8
        ``bytes``). Raises :class:`anyio.EndOfStream` once the peer is gone."""
        payload = await self._incoming.receive()
        self._queued_bytes -= len(payload)
        if self._queued_bytes <= self.options.max_receive_queue // 2:
            self._room.set()
        return payload

    def __aiter__(self) -> DataChannelPeer:
        return self

    async def __anext__(self) -> Payload:
        try:
            return await self.receive()
        except anyio.EndOfStream:
            raise StopAsyncIteration from None

    async def _wait_for_room(self) -> None:
        """Holds the engine's receive path while too much waits for the reader."""
        await self._room.wait()

    # ------------------------------------------------------------------ lifecycle

    def _mark_gone(self, reason: str) -> None:
        if self.gone:
            return
        self._gone_reason = reason
        self._gone.set()
        logger.log(
            logging.DEBUG if reason == CLOSED_LOCALLY else logging.INFO, "peer gone: %s", reason
        )
        self._incoming_send.close()
        self._room.set()
        self._wake.set()
        self._drained.set()
        self._release_senders()

    def _fail_connect(self, error: BaseException) -> None:
        if self._connect_error is None and not self._ready.is_set():
            self._connect_error = error
            self._ready.set()

    def _attach(self, channel: RTCDataChannel) -> None:
        if self._channel is not None:
            logger.warning("ignoring extra data channel %r from peer", channel.label)
            return
        self._channel = channel
        self._label = channel.label
        channel.bufferedAmountLowThreshold = self.options.send_low_watermark
        channel.on("message", self._on_message)
        channel.on("bufferedamountlow", self._drained.set)

        def closed() -> None:
            self._fail_connect(ConnectError(ConnectFailureReason.CHANNEL_NOT_OPENED, "it closed"))
            self._mark_gone(PEER_CLOSED)

        channel.on("close", closed)

        def opened() -> None:
            self._last_alive = time.monotonic()
            granted = _internals.set_receive_buffer(self._pc, self.options.udp_receive_buffer)
            _internals.gate_receive(self._pc, self._wait_for_room)
            logger.debug("data channel open; UDP receive buffer %s bytes", granted)
            self._ready.set()

        if channel.readyState == "open":
            opened()
        else:
            channel.on("open", opened)

    def _on_gathering(self) -> None:
        # Counted the moment gathering completes: aiortc drops the local candidates again
        # as soon as ICE fails (e.g. the peer declared it has none).
        if self.pc.iceGatheringState == "complete" and self.pc.sctp is not None:
            gatherer = self.pc.sctp.transport.transport.iceGatherer
            self._local_candidates = len(gatherer.getLocalCandidates())

    def _on_state(self) -> None:
        state = self.pc.connectionState
        if state == "failed":
            self._fail_connect(ConnectError(*self._diagnose()))
            self._mark_gone("ICE/DTLS connection failed")
        elif state == "closed":
            self._mark_gone("peer connection closed")

    async def _describe(self, kind: str) -> None:
        with _internals.host_candidate_filter(self.options.host_candidates):
            if kind == "offer":
                await self.pc.setLocalDescription(await self.pc.createOffer())
            else:
                await self.pc.setLocalDescription(await self.pc.createAnswer())
        local = self.pc.localDescription
        sdp = add_capability(
            local.sdp, self.options.max_message_size, deflate=self.options.compression
        )
        kind_sent: Literal["offer", "answer"] = "offer" if local.type == "offer" else "answer"
        await self._signaling.send(to_json_object(DescriptionSignal(kind_sent, sdp)))

    async def _apply_remote(self, signal: DescriptionSignal) -> None:
        remote = parse_capabilities(signal.sdp)
        for note in remote.ignored:
            logger.warning("ignoring a malformed attribute of the peer's %s: %s", signal.type, note)
        sdp = drop_bad_size_lines(signal.sdp)  # the engine ignores them too
        try:
            await self.pc.setRemoteDescription(RTCSessionDescription(sdp, signal.type))
        except ValueError as exc:  # aiortc cannot parse it
            detail = f"the peer's {signal.type} could not be used: {exc}"
            self._fail_connect(ConnectError(ConnectFailureReason.NO_REMOTE_DESCRIPTION, detail))
            return
        if not self.initiator:  # the answerer's transports exist from now on
            _internals.stop_consent_after_close(self._pc)
        self._remote = remote
        self._remote_candidates += count_candidates(signal.sdp)
        pending, self._pending_candidates = self._pending_candidates, []
        for candidate in pending:
            await self._add_candidate(candidate)
        if self._remote_candidates == 0 and "a=end-of-candidates" in signal.sdp:
            self._fail_connect(ConnectError(*self._diagnose()))

    async def _add_candidate(self, signal: CandidateSignal) -> None:
        if not signal.candidate:
            return  # end-of-candidates: aiortc needs no notice
        if self._remote is None:
            self._pending_candidates.append(signal)
            return
        try:
            candidate = candidate_from_sdp(signal.candidate.removeprefix("candidate:"))
            candidate.sdpMid = signal.sdp_mid
            candidate.sdpMLineIndex = signal.sdp_mline_index
            if candidate.sdpMid is None and candidate.sdpMLineIndex is None:
                candidate.sdpMLineIndex = 0
            await self.pc.addIceCandidate(candidate)
        except Exception as exc:
            logger.warning("ignoring unusable ICE candidate %r: %s", signal.candidate, exc)
            return
        self._remote_candidates += 1

    async def _signaling_loop(self) -> None:
        try:
            while True:
                raw = await self._signaling.receive()
                if raw is None:
                    self._fail_connect(
                        ConnectError(ConnectFailureReason.PEER_LEFT, "signaling closed")
                    )
                    logger.debug("signaling closed")
                    return
                await self._handle_signal(raw)
        except Exception as exc:
            if not self._ready.is_set():
                self._fail_connect(SignalingError(f"signaling failed: {exc!r}"))
            else:
                logger.info("signaling ended after connecting: %r", exc)

    async def _handle_signal(self, raw: object) -> None:
        signal = parse_signal(raw)
        if isinstance(signal, CandidateSignal):
            await self._add_candidate(signal)
        elif isinstance(signal, DescriptionSignal):
            expected = "answer" if self.initiator else "offer"
            if signal.type != expected or self._remote is not None:
                logger.warning(
                    "ignoring unexpected %s (renegotiation is not supported)", signal.type
                )
                return
            await self._apply_remote(signal)
            if not self.initiator:
                await self._describe("answer")
        elif isinstance(signal, ByeSignal):
            self._bye_received = True
            why = "peer said bye" + (f": {signal.reason}" if signal.reason else "")
            reason, detail = self._diagnose()
            if reason is not ConnectFailureReason.NO_LOCAL_CANDIDATES:
                reason = ConnectFailureReason.PEER_LEFT
            self._fail_connect(ConnectError(reason, f"{why}; {detail}"))
            self._mark_gone(why)
        elif isinstance(signal, UnknownSignal):
            logger.warning("ignoring unknown signal (%s): %.200r", signal.why, signal.raw)

    def _no_local(self, detail: str) -> tuple[ConnectFailureReason, str]:
        if self._turn_urls:
            detail += (
                f"; the TURN server {self._turn_urls[0]} gave no relayed candidate: "
                "unreachable, credentials rejected or expired, or certificate not trusted"
            )
        return ConnectFailureReason.NO_LOCAL_CANDIDATES, detail

    def _diagnose(self) -> tuple[ConnectFailureReason, str]:
        pc = self._pc
        if pc is None:
            return ConnectFailureReason.NO_REMOTE_DESCRIPTION, "signaling did not connect"
        local = self._local_candidates
        dtls = pc.sctp.transport.state if pc.sctp is not None else "new"
        detail = (
            f"local candidates: {local}, remote candidates: {self._remote_candidates}, "
            f"ICE: {pc.iceConnectionState}, DTLS: {dtls}"
        )
        if self.initiator and local == 0 and pc.iceGatheringState == "complete":
            return self._no_local(detail)  # offered nothing to try
        if self._remote is None:
            return ConnectFailureReason.NO_REMOTE_DESCRIPTION, detail
        # An answerer whose offer holds no candidate gathers none itself (aiortc stops ICE
        # at once), so then the remote side is the cause.
        if self._remote_candidates == 0 and (local > 0 or not self.initiator):
            return ConnectFailureReason.NO_REMOTE_CANDIDATES, detail
        if local == 0:
            return self._no_local(detail)
        if pc.iceConnectionState not in ("connected", "completed"):
            return ConnectFailureReason.ICE_FAILED, detail
        if dtls != "connected":
            return ConnectFailureReason.DTLS_FAILED, detail
        return ConnectFailureReason.CHANNEL_NOT_OPENED, detail

    async def _connect(self, tg: TaskGroup) -> None:
        await self._signaling.connect()
        # our STUN/TURN servers first, then those the signaling (a rendezvous) handed out
        servers = (*self.options.ice_servers, *getattr(self._signaling, "ice_servers", ()))
        self._turn_urls = _urls(servers, "turn")
        self._pc = RTCPeerConnection(_ice_configuration(self.options, servers))
        self._pc.on("connectionstatechange", self._on_state)
        self.pc.on("icegatheringstatechange", self._on_gathering)
        if self.initiator:
            # Offer first, then listen: with aiortc's TcpSocketSignaling whoever sends first
            # is the listening side.
            self._attach(self.pc.createDataChannel(self._label, ordered=True))
            _internals.stop_consent_after_close(self._pc)
            await self._describe("offer")
        else:
            self.pc.on("datachannel", self._attach)
        tg.start_soon(self._guarded, self._signaling_loop)
        await self._ready.wait()
        if self._connect_error is not None:
            raise self._connect_error
        if self._remote is None:  # pragma: no cover - the channel cannot open without it
            raise ConnectError(ConnectFailureReason.NO_REMOTE_DESCRIPTION)

    async def _guarded(self, task: Callable[[], Awaitable[None]]) -> None:
        """Run a background task; a bug in it ends the connection instead of escaping."""
        try:
            await task()
        except Exception as exc:
            logger.exception("internal error in %s", getattr(task, "__name__", task))
            self._mark_gone(f"internal error: {exc!r}")

    async def _monitor(self) -> None:
        """Dead-peer detection: the peer is gone ``dead_peer_timeout`` seconds after the
        last sign of life (data, or an answer to an ICE consent check), to the deadline:
        the probes run beside the watch, never delaying it."""
        timeout = self.options.dead_peer_timeout
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._probe, max(0.1, min(2.0, timeout / 5)))
            while not self.gone:
                silent = time.monotonic() - self._last_alive
                if silent >= timeout:
                    self._mark_gone(f"no answer from the peer for {silent:.1f} s")
                    break
                await anyio.sleep(timeout - silent)
            tg.cancel_scope.cancel()

    async def _probe(self, interval: float) -> None:
        """ICE consent checks: a quiet peer every ``interval``, a busy one (whose data
        proves life already) every few intervals to keep the RTT fresh."""
        last_probe = -math.inf
        while True:
            now = time.monotonic()
            if now - self._last_alive >= interval or now - last_probe >= 5 * interval:
                last_probe = now
                rtt = await _internals.consent_check(self._pc)
                if rtt is not None:
                    self._rtt = rtt
                    self._last_alive = time.monotonic()
            await anyio.sleep(interval)

    async def _close(self, reason: str | None = None) -> None:
        """Bounded shutdown: flush, say bye, close channel, connection and signaling."""
        budget = self.options.close_timeout
        with anyio.move_on_after(budget, shield=True):
            if not self.gone and self._channel is not None:
                with anyio.move_on_after(budget / 2):
                    while len(self._scheduler) or self._channel.bufferedAmount:
                        if self.gone:
                            break
                        await anyio.sleep(0.01)
            self._mark_gone(CLOSED_LOCALLY)
            if not self._bye_received:
                with anyio.move_on_after(min(1.0, budget / 4)):
                    try:
                        await self._signaling.send(to_json_object(ByeSignal(reason)))
                    except Exception as exc:
                        logger.debug("could not send bye: %r", exc)
            if self._channel is not None:
                self._channel.close()
            if self._pc is not None:
                await self._pc.close()
            with anyio.move_on_after(min(1.0, budget / 4)):
                try:
                    await self._signaling.close()
                except Exception as exc:
                    logger.debug("signaling close failed: %r", exc)


@asynccontextmanager
async def open_peer(
    signaling: Signaling | object, options: WebRTCOptions, *, initiator: bool
) -> AsyncIterator[DataChannelPeer]:
    """Connect to the peer behind ``signaling``; yield the connected :class:`DataChannelPeer`.

    Raises :class:`ConnectTimeoutError` after ``options.connect_timeout`` seconds, naming the
    stage that stalled, or :class:`ConnectError` / :class:`SignalingError` as soon as the
    attempt is known to have failed.
    """
    peer = DataChannelPeer(as_signaling(signaling), options, initiator)
    failure: BaseException | None = None
    body_error: Exception | None = None
    async with anyio.create_task_group() as tg:
        try:
            with anyio.move_on_after(options.connect_timeout) as scope:
                await peer._connect(tg)
            if scope.cancelled_caught:
                reason, detail = peer._diagnose()
                raise ConnectTimeoutError(reason, options.connect_timeout, detail)
        except Exception as exc:  # raised below, outside the task group, unwrapped
            failure = exc
        if failure is None:
            tg.start_soon(peer._guarded, peer._sender)
            tg.start_soon(peer._guarded, peer._monitor)
        try:
            if failure is None:
                try:
                    yield peer
                except Exception as exc:  # the caller's own error: re-raised unwrapped below
                    body_error = exc
        finally:
            await peer._close(None if failure is None else f"connect failed: {failure}")
            tg.cancel_scope.cancel()
    if failure is not None:
        raise failure
    if body_error is not None:
        raise body_error


__all__ = ["ConnectionInfo", "DataChannelPeer", "open_peer"]
