"""One peer: a signaling channel, a WebRTC engine, and mcp-webrtc's connection rules.

``async with DataChannelPeer(signaling, options, initiator=...) as peer`` negotiates over
the signaling channel with the engine that ``options.engine`` names, waits for the data
channel to open (or raises :class:`~mcp_webrtc.exceptions.ConnectError` with the reason),
then sends and receives whole messages of any size. Leaving closes everything within
``options.close_timeout``. The rules (framing, limits, error answers) are the pure
:class:`~mcp_webrtc._core.connection.Connection`; the engine only moves frames.

This layer knows nothing of MCP: payloads are JSON texts. :mod:`mcp_webrtc.transport`
turns them into SDK messages.
"""

from __future__ import annotations

import asyncio
import logging
import math
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from types import TracebackType
from typing import Literal

import anyio
from anyio.abc import TaskGroup

from . import engines
from ._core.connection import Connection, ConnectSnapshot, Settings, diagnose
from ._core.framing import Outgoing, Payload
from ._core.sdp import keep_candidates
from ._core.signals import (
    ByeSignal,
    CandidateSignal,
    DescriptionSignal,
    UnknownSignal,
    parse_signal,
    to_json_object,
)
from .engines.addresses import address_predicate
from .engines.base import Engine, EngineEvents, PathInfo
from .exceptions import (
    ConnectError,
    ConnectFailureReason,
    ConnectTimeoutError,
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
#: Typical channel rates per engine, for compression decisions (bytes per second).
CHANNEL_RATES = {"aiortc": 10e6, "libwebrtc": 100e6}

#: Makes the engine of a peer: ``(options, ice_servers, events, keep_host) -> Engine``.
EngineFactory = Callable[
    [WebRTCOptions, tuple[IceServer, ...], EngineEvents, Callable[[str], bool] | None], Engine
]


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
    #: Round trip on the selected pair (latest ICE check), in seconds.
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
    #: Whether large messages to the peer may be raw-DEFLATE compressed.
    compression: bool
    #: The WebRTC engine: ``aiortc`` or ``libwebrtc``.
    engine: str


class DataChannelPeer:
    """A peer connection with one data channel (see the module docstring)."""

    def __init__(
        self,
        signaling: Signaling | object,
        options: WebRTCOptions,
        *,
        initiator: bool,
        engine: EngineFactory | None = None,
    ) -> None:
        self.options = options
        self.initiator = initiator
        self._create_engine = engine or engines.create
        #: The engine in use (``auto`` resolved): ``aiortc`` or ``libwebrtc`` (or the
        #: ``name`` of one given as ``engine``, a factory like :func:`engines.create`).
        self.engine = engines.resolve(options.engine) if engine is None else "custom"
        self._keep_host = address_predicate(options.host_candidates)
        self._signaling = as_signaling(signaling)
        self._label = options.channel_label or secrets.token_hex(20)
        self._core = Connection(
            Settings(
                options.max_message_size,
                options.chunk_size,
                options.compression,
                options.max_receive_queue,
                CHANNEL_RATES.get(self.engine, CHANNEL_RATES["aiortc"]),
            )
        )
        self._engine: Engine | None = None  # created once signaling is connected
        self._tg: TaskGroup | None = None
        self._stack: AsyncExitStack | None = None
        self._done: dict[Outgoing, asyncio.Event] = {}
        self._wake = asyncio.Event()  # frames to send
        self._drained = asyncio.Event()  # the channel's buffer fell low
        self._available = asyncio.Event()  # a message for the reader, or gone
        self._room = asyncio.Event()  # the reader is not behind
        self._room.set()
        self._ready = asyncio.Event()  # channel open, or connecting failed
        self._connect_error: BaseException | None = None
        self._gone = asyncio.Event()
        self._gone_reason = ""
        self._bye_received = False
        self._described = False  # our description went out: trickle candidates may follow
        self._early_candidates: list[CandidateSignal | None] = []
        self._last_alive = time.monotonic()
        self._path = PathInfo(None, None, None)

    # ------------------------------------------------------------------ public

    @property
    def gone(self) -> bool:
        return self._gone.is_set()

    @property
    def gone_reason(self) -> str:
        return self._gone_reason

    async def wait_gone(self) -> None:
        await self._gone.wait()

    @property
    def buffered_amount(self) -> int:
        """Bytes handed to the channel and not yet sent by the engine."""
        return self._engine.buffered_amount if self._engine is not None else 0

    @property
    def frames_waiting(self) -> bool:
        """Whether frames wait to be handed to the channel."""
        return self._core.frames_waiting

    @property
    def partial_bytes(self) -> int:
        """Bytes of chunked messages being received (held until they are complete)."""
        return self._core.partial_bytes

    def info(self) -> ConnectionInfo:
        core, path = self._core, self._path
        local, remote = path.local, path.remote
        return ConnectionInfo(
            local_candidate_type=local.type if local else None,
            local_address=(local.address, local.port) if local else None,
            remote_candidate_type=remote.type if remote else None,
            remote_address=(remote.address, remote.port) if remote else None,
            protocol=local.protocol if local else None,
            rtt=path.rtt,
            bytes_sent=core.bytes_sent,
            bytes_received=core.bytes_received,
            messages_sent=core.messages_sent,
            messages_received=core.messages_received,
            channel_label=(self._engine.label if self._engine else None) or self._label,
            peer_chunking=bool(core.remote and core.remote.chunking),
            peer_max_message_size=core.peer_limit,
            compression=core.compressing,
            engine=self.engine,
        )

    async def send(self, text: str) -> None:
        """Send one message and wait until the channel took its last frame.

        Raises :class:`MessageTooLargeError` (nothing was sent) or :class:`PeerGoneError`.
        Cancelling the call withdraws the message; a peer that already received part of
        it is told to discard that part.
        """
        if self.gone:
            raise PeerGoneError(self._gone_reason)
        item = self._core.send(text)
        done = self._done[item] = asyncio.Event()
        self._wake.set()
        try:
            await done.wait()
        except BaseException:
            abort = self._core.withdraw(item)
            if abort is not None and not self.gone:
                self.send_frame(abort)
            raise
        finally:
            self._done.pop(item, None)
        if not item.delivered:
            raise PeerGoneError(self._gone_reason)

    def send_soon(self, text: str) -> None:
        """Queue an error answer to the peer's bad input; never waits, never raises.
        Answers are rate-limited (see :class:`~mcp_webrtc._core.connection.Connection`)."""
        if not self.gone and self._core.answer(text):
            self._wake.set()

    def send_frame(self, frame: str | bytes) -> bool:
        """Hand one data-channel message to the channel as it is, bypassing the framing
        (for protocol tests and tools). Returns whether the channel took it."""
        if self._engine is None:
            return False
        try:
            self._engine.send(frame)
        except ConnectionError as exc:
            self._mark_gone(str(exc))
            return False
        return True

    async def receive(self) -> Payload:
        """The next complete message from the peer (a JSON text, as ``str`` or UTF-8
        bytes). Raises :class:`anyio.EndOfStream` once the peer is gone and every message
        it sent has been taken."""
        while True:
            payload = self._core.next_message()
            if payload is not None:
                if self._core.reader_caught_up:
                    self._room.set()
                return payload
            if self.gone:
                raise anyio.EndOfStream
            self._available.clear()
            await self._available.wait()

    def __aiter__(self) -> DataChannelPeer:
        return self

    async def __anext__(self) -> Payload:
        try:
            return await self.receive()
        except anyio.EndOfStream:
            raise StopAsyncIteration from None

    # ------------------------------------------------------------------ lifetime

    async def __aenter__(self) -> DataChannelPeer:
        if self._stack is not None:
            raise RuntimeError("this peer is already in use")
        stack = AsyncExitStack()
        await stack.__aenter__()
        try:
            await stack.enter_async_context(self._lifetime())
        except BaseException as exc:
            await stack.__aexit__(type(exc), exc, exc.__traceback__)
            raise
        self._stack = stack
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        stack, self._stack = self._stack, None
        return None if stack is None else await stack.__aexit__(exc_type, exc, tb)

    @asynccontextmanager
    async def _lifetime(self) -> AsyncIterator[None]:
        """Connect (bounded by ``connect_timeout``), run the background tasks, close."""
        options = self.options
        failure: BaseException | None = None
        body_error: Exception | None = None
        async with anyio.create_task_group() as tg:
            self._tg = tg
            try:
                with anyio.move_on_after(options.connect_timeout) as scope:
                    await self._connect(tg)
                if scope.cancelled_caught:
                    reason, detail = self._diagnose()
                    raise ConnectTimeoutError(reason, options.connect_timeout, detail)
            except Exception as exc:  # raised below, outside the task group, unwrapped
                failure = exc
            if failure is None:
                tg.start_soon(self._guarded, self._sender)
                tg.start_soon(self._guarded, self._monitor)
            try:
                if failure is None:
                    try:
                        yield
                    except Exception as exc:  # the caller's own error: re-raised unwrapped
                        body_error = exc
            finally:
                await self._close(None if failure is None else f"connect failed: {failure}")
                tg.cancel_scope.cancel()
        if failure is not None:
            raise failure
        if body_error is not None:
            raise body_error

    async def _guarded(self, task: Callable[[], Awaitable[None]]) -> None:
        """Run a background task; a bug in it ends the connection instead of escaping."""
        try:
            await task()
        except Exception as exc:
            logger.exception("internal error in %s", getattr(task, "__name__", task))
            self._mark_gone(f"internal error: {exc!r}")

    def _mark_gone(self, reason: str) -> None:
        if self.gone:
            return
        self._gone_reason = reason
        self._gone.set()
        level = logging.DEBUG if reason == CLOSED_LOCALLY else logging.INFO
        logger.log(level, "peer gone: %s", reason)
        for event in (self._available, self._room, self._wake, self._drained):
            event.set()
        for done in list(self._done.values()):
            done.set()

    def _fail_connect(self, error: BaseException) -> None:
        if self._connect_error is None and not self._ready.is_set():
            self._connect_error = error
            self._ready.set()

    def _snapshot(self) -> ConnectSnapshot:
        if self._engine is None:
            return ConnectSnapshot(False, False, 0, 0, False, "new", "new")
        found = self._engine.snapshot()
        return ConnectSnapshot(
            found.started,
            found.remote_description,
            found.local_candidates,
            self._core.remote_candidates,
            found.gathered,
            found.ice_state,
            found.dtls_state,
            found.turn_urls,
        )

    def _diagnose(self) -> tuple[ConnectFailureReason, str]:
        return diagnose(self._snapshot(), initiator=self.initiator)

    # ------------------------------------------------------------------ engine events

    def channel_open(self) -> None:
        self._last_alive = time.monotonic()
        assert self._engine is not None
        self._engine.hold_receiving(self._wait_for_room)
        self._ready.set()

    def channel_closed(self) -> None:
        self._fail_connect(ConnectError(ConnectFailureReason.CHANNEL_NOT_OPENED, "it closed"))
        self._mark_gone(PEER_CLOSED)

    def message(self, data: str | bytes) -> None:
        self._last_alive = time.monotonic()
        note = self._core.receive(data)
        if note is not None:
            logger.warning("peer sent bad input: %s", note)
        if self._core.frames_waiting:
            self._wake.set()  # error answers
        self._available.set()
        if self._core.reader_behind:
            self._room.clear()  # the engine stops reading until the reader catches up

    def drained(self) -> None:
        self._drained.set()

    def local_candidate(self, candidate: CandidateSignal | None) -> None:
        if not self._described:
            self._early_candidates.append(candidate)
        elif self._tg is not None:
            self._tg.start_soon(self._signal_candidate, candidate)

    def failed(self) -> None:
        self._fail_connect(ConnectError(*self._diagnose()))
        self._mark_gone("ICE/DTLS connection failed")

    def closed(self) -> None:
        self._mark_gone("peer connection closed")

    async def _wait_for_room(self) -> None:
        """Holds the engine's receive path while too much waits for the reader."""
        await self._room.wait()

    # ------------------------------------------------------------------ connecting

    async def _connect(self, tg: TaskGroup) -> None:
        await self._signaling.connect()
        # our STUN/TURN servers first, then those the signaling (a rendezvous) handed out
        servers = (*self.options.ice_servers, *getattr(self._signaling, "ice_servers", ()))
        self._engine = self._create_engine(self.options, servers, self, self._keep_host)
        self.engine = self._engine.name
        if self.initiator:
            # Offer first, then listen: with aiortc's TcpSocketSignaling whoever sends first
            # is the listening side.
            await self._describe("offer", await self._engine.offer(self._label))
        tg.start_soon(self._guarded, self._signaling_loop)
        await self._ready.wait()
        if self._connect_error is not None:
            raise self._connect_error
        self._path = await self._engine.path()

    async def _describe(self, kind: Literal["offer", "answer"], sdp: str) -> None:
        if self._keep_host is not None:
            sdp = keep_candidates(sdp, self._keep_host)
        description = DescriptionSignal(kind, self._core.local_description(sdp))
        await self._signaling.send(to_json_object(description))
        self._described = True
        early, self._early_candidates = self._early_candidates, []
        for candidate in early:
            await self._signal_candidate(candidate)

    async def _signal_candidate(self, candidate: CandidateSignal | None) -> None:
        signal = candidate or CandidateSignal("", "0", 0)  # end-of-candidates
        try:
            await self._signaling.send(to_json_object(signal))
        except Exception as exc:
            logger.debug("could not signal a candidate: %r", exc)

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
            if signal.type != expected or self._core.remote is not None:
                logger.warning("ignoring a second %s (no renegotiation)", signal.type)
                return
            await self._apply_remote(signal)
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

    async def _apply_remote(self, signal: DescriptionSignal) -> None:
        assert self._engine is not None
        sdp, ignored = self._core.remote_description(signal.sdp)
        for note in ignored:
            logger.warning("ignoring a malformed attribute of the peer's %s: %s", signal.type, note)
        try:
            if self.initiator:
                await self._engine.accept(sdp)
            else:
                answer = await self._engine.answer(sdp)
        except ValueError as exc:  # the engine cannot parse it
            detail = f"the peer's {signal.type} could not be used: {exc}"
            self._fail_connect(ConnectError(ConnectFailureReason.NO_REMOTE_DESCRIPTION, detail))
            return
        for candidate in self._core.held_candidates():
            await self._add_candidate(candidate)
        if self._core.remote_candidates == 0 and "a=end-of-candidates" in signal.sdp:
            self._fail_connect(ConnectError(*self._diagnose()))
        if not self.initiator:
            await self._describe("answer", answer)

    async def _add_candidate(self, signal: CandidateSignal) -> None:
        if not signal.candidate:  # end-of-candidates: nothing more is coming
            if self._core.remote is not None and self._core.remote_candidates == 0:
                self._fail_connect(ConnectError(*self._diagnose()))
            return
        if not self._core.remote_candidate(signal):
            return  # held until the description is set
        assert self._engine is not None
        try:
            await self._engine.add_candidate(signal)
        except Exception as exc:
            logger.warning("ignoring unusable ICE candidate %r: %s", signal.candidate, exc)
            return
        self._core.candidate_applied()

    # ------------------------------------------------------------------ connected

    async def _sender(self) -> None:
        """Hands queued frames to the channel until the peer is gone. Shielded: when the
        caller's scope is cancelled (a server stopping), what the MCP session still writes
        on its way out (error answers to pending requests) is sent, and the close flushes
        the queue; the loop ends when the close marks the peer gone."""
        with anyio.CancelScope(shield=True):
            await self._send_until_gone()
        for done in list(self._done.values()):
            done.set()

    async def _send_until_gone(self) -> None:
        engine, core = self._engine, self._core
        assert engine is not None
        high = self.options.send_high_watermark
        while not self.gone:
            if engine.buffered_amount > high:  # wait *before* taking a frame: a frame
                self._drained.clear()  # taken is sent at once, never held across an await
                await self._drained.wait()
                continue
            popped = core.next_frame()
            if popped is None:
                self._wake.clear()
                await self._wake.wait()
                continue
            frame, item = popped
            if not self.send_frame(frame):
                break
            if core.frame_sent(frame, item):
                done = self._done.get(item)
                if done is not None:
                    done.set()

    async def _monitor(self) -> None:
        """Dead-peer detection: the peer is gone ``dead_peer_timeout`` seconds after the
        last sign of life (data, or ICE checks answered), to the deadline: the probes run
        beside the watch, never delaying it."""
        timeout = self.options.dead_peer_timeout
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._probe, max(0.1, min(1.0, timeout / 10)))
            while not self.gone:
                silent = time.monotonic() - self._last_alive
                if silent >= timeout:
                    self._mark_gone(f"no answer from the peer for {silent:.1f} s")
                    break
                await anyio.sleep(timeout - silent)
            tg.cancel_scope.cancel()

    async def _probe(self, interval: float) -> None:
        """Ask the engine when the peer was last heard: for a quiet peer every
        ``interval``, for a busy one (whose data proves life) every few, for the RTT."""
        engine = self._engine
        assert engine is not None
        last_probe = -math.inf
        while True:
            now = time.monotonic()
            if now - self._last_alive >= interval or now - last_probe >= 5 * interval:
                last_probe = now
                heard = await engine.last_heard()
                if heard is not None:
                    self._last_alive = max(self._last_alive, heard)
                self._path = await engine.path()
            await anyio.sleep(interval)

    async def _close(self, reason: str | None = None) -> None:
        """Bounded shutdown: flush, say bye, close the engine and the signaling."""
        budget = self.options.close_timeout
        engine = self._engine
        with anyio.move_on_after(budget, shield=True):
            if not self.gone and engine is not None:
                with anyio.move_on_after(budget / 2):
                    while self._core.frames_waiting or engine.buffered_amount:
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
            if engine is not None:
                await engine.close()
            with anyio.move_on_after(min(1.0, budget / 4)):
                try:
                    await self._signaling.close()
                except Exception as exc:
                    logger.debug("signaling close failed: %r", exc)


def open_peer(
    signaling: Signaling | object, options: WebRTCOptions, *, initiator: bool
) -> DataChannelPeer:
    """The peer behind ``signaling``, to enter with ``async with``: raises
    :class:`ConnectTimeoutError` after ``options.connect_timeout`` seconds, naming the stage
    that stalled, or :class:`ConnectError` / :class:`SignalingError` as soon as the attempt
    is known to have failed."""
    return DataChannelPeer(signaling, options, initiator=initiator)


__all__ = ["CLOSED_LOCALLY", "PEER_CLOSED", "ConnectionInfo", "DataChannelPeer", "open_peer"]
