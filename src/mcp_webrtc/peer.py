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
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import replace
from types import TracebackType

import anyio
from anyio.abc import TaskGroup

from . import engines
from ._core.connection import Connection, ConnectSnapshot, Settings, diagnose
from ._core.framing import Payload
from ._core.signals import (
    ByeSignal,
    CandidateSignal,
    to_json_object,
)
from .engines.addresses import address_predicate
from .engines.base import Engine, EngineEvents
from .exceptions import (
    ConnectError,
    ConnectFailureReason,
    ConnectTimeoutError,
)
from .inbox import Inbox
from .info import ConnectionInfo
from .liveness import Liveness
from .negotiation import Negotiation
from .options import IceServer, WebRTCOptions
from .outbox import Outbox
from .signaling import Signaling, as_signaling

logger = logging.getLogger("mcp_webrtc.peer")

CLOSED_LOCALLY = "closed locally"
#: Why a peer is gone when its channel closed: a peer that stops says bye through
#: signaling and closes the channel; whichever arrives first names the end.
PEER_CLOSED = "the peer closed the data channel"
#: Typical channel rates per engine (bytes per second), for compression decisions until
#: the channel's own rate is measured.
CHANNEL_RATES = {"aiortc": 10e6, "libwebrtc": 100e6}

#: Makes the engine of a peer: ``(options, ice_servers, events, keep_host) -> Engine``.
EngineFactory = Callable[
    [WebRTCOptions, tuple[IceServer, ...], EngineEvents, Callable[[str], bool] | None], Engine
]


class _EngineEventHandlers:
    """What the engine tells a peer (:class:`~mcp_webrtc.engines.base.EngineEvents`), and
    the diagnosis of a connection that did not come up; the peer's lifetime is
    :class:`DataChannelPeer`'s."""

    initiator: bool
    _core: Connection
    _engine: Engine | None
    _inbox: Inbox
    _liveness: Liveness
    _negotiation: Negotiation | None
    _outbox: Outbox
    _ready: asyncio.Event
    _tg: TaskGroup | None

    def connect_failed(self, error: BaseException) -> None:
        raise NotImplementedError

    def went_away(self, reason: str) -> None:
        raise NotImplementedError

    def diagnosis(self) -> tuple[ConnectFailureReason, str]:
        """Why a connection attempt has not come up, from where it stands."""
        if self._engine is None:
            snapshot = ConnectSnapshot(False, False, 0, 0, False, "new", "new")
        else:  # the engine's view, with the remote candidates this side counted
            found = self._engine.snapshot()
            snapshot = replace(found, remote_candidates=self._core.remote_candidates)
        return diagnose(snapshot, initiator=self.initiator)

    def channel_open(self) -> None:
        self._liveness.heard()
        assert self._engine is not None
        self._engine.hold_receiving(self._inbox.wait_for_room)
        self._ready.set()

    def channel_closed(self) -> None:
        self.connect_failed(ConnectError(ConnectFailureReason.CHANNEL_NOT_OPENED, "it closed"))
        self.went_away(PEER_CLOSED)

    def message(self, data: str | bytes) -> None:
        self._liveness.heard()
        self._inbox.take(data)
        if self._core.frames_waiting:
            self._outbox.wake()  # error answers

    def drained(self) -> None:
        self._outbox.drained()

    def local_candidate(self, candidate: CandidateSignal | None) -> None:
        negotiation = self._negotiation
        if negotiation is not None and not negotiation.held(candidate) and self._tg is not None:
            self._tg.start_soon(negotiation.signal_candidate, candidate)

    def failed(self) -> None:
        self.connect_failed(ConnectError(*self.diagnosis()))
        self.went_away("ICE/DTLS connection failed")

    def closed(self) -> None:
        self.went_away("peer connection closed")


class DataChannelPeer(_EngineEventHandlers):
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
                options.identity,
                options.peer_keys(),
            )
        )
        self._engine: Engine | None = None  # created once signaling is connected
        self._negotiation: Negotiation | None = None
        self._outbox = Outbox(self._core, self, options.send_high_watermark)
        self._tg: TaskGroup | None = None
        self._stack: AsyncExitStack | None = None
        self._inbox = Inbox(self._core)
        self._ready = asyncio.Event()  # channel open, or connecting failed
        self._connect_error: BaseException | None = None
        self._gone = asyncio.Event()
        self._gone_reason = ""
        self._liveness = Liveness(options.dead_peer_timeout)

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
        return self._outbox.buffered_amount

    @property
    def frames_waiting(self) -> bool:
        """Whether frames wait to be handed to the channel."""
        return self._core.frames_waiting

    @property
    def partial_bytes(self) -> int:
        """Bytes of chunked messages being received (held until they are complete)."""
        return self._core.partial_bytes

    def info(self) -> ConnectionInfo:
        label = (self._engine.label if self._engine else None) or self._label
        return ConnectionInfo.of(self._core, self._liveness.path, label, self.engine)

    async def send(self, text: str) -> None:
        """Send one message and wait until the channel took its last frame.

        Raises :class:`MessageTooLargeError` (nothing was sent) or :class:`PeerGoneError`.
        Cancelling the call withdraws the message; a peer that already received part of
        it is told to discard that part.
        """
        await self._outbox.send(text)

    def send_soon(self, text: str) -> None:
        """Queue an error answer to the peer's bad input; never waits, never raises.
        Answers are rate-limited (see :class:`~mcp_webrtc._core.connection.Connection`)."""
        self._outbox.answer(text)

    def send_frame(self, frame: str | bytes) -> bool:
        """Hand one data-channel message to the channel as it is, bypassing the framing
        (for protocol tests and tools). Returns whether the channel took it."""
        return self._outbox.send_frame(frame)

    async def receive(self) -> Payload:
        """The next complete message from the peer (a JSON text, as ``str`` or UTF-8
        bytes). Raises :class:`anyio.EndOfStream` once the peer is gone and every message
        it sent has been taken."""
        return await self._inbox.receive()

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
                    reason, detail = self.diagnosis()
                    raise ConnectTimeoutError(reason, options.connect_timeout, detail)
            except Exception as exc:  # raised below, outside the task group, unwrapped
                failure = exc
            if failure is None:
                tg.start_soon(self._guarded, self._outbox.run)
                tg.start_soon(self._guarded, self._watch)
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
            self.went_away(f"internal error: {exc!r}")

    def went_away(self, reason: str) -> None:
        """The peer is gone (or we closed): everything waiting on it returns."""
        if self.gone:
            return
        self._gone_reason = reason
        self._gone.set()
        level = logging.DEBUG if reason == CLOSED_LOCALLY else logging.INFO
        logger.log(level, "peer gone: %s", reason)
        self._inbox.end()
        self._outbox.release()

    def connect_failed(self, error: BaseException) -> None:
        """Connecting failed with ``error`` (the first reason found wins)."""
        if self._connect_error is None and not self._ready.is_set():
            self._connect_error = error
            self._ready.set()

    @property
    def connected(self) -> bool:
        """Whether the data channel opened (or connecting ended in failure)."""
        return self._ready.is_set()

    # ------------------------------------------------------------------ connecting

    async def _connect(self, tg: TaskGroup) -> None:
        await self._signaling.connect()
        # our STUN/TURN servers first, then those the signaling (a rendezvous) handed out
        servers = (*self.options.ice_servers, *getattr(self._signaling, "ice_servers", ()))
        engine = self._create_engine(self.options, servers, self, self._keep_host)
        self._engine = self._outbox.engine = engine
        self.engine = engine.name
        negotiation = self._negotiation = Negotiation(
            self._signaling,
            self._core,
            engine,
            self,
            initiator=self.initiator,
            keep_host=self._keep_host,
        )
        if self.initiator:
            # Offer first, then listen: with aiortc's TcpSocketSignaling whoever sends first
            # is the listening side.
            await negotiation.offer(self._label)
        tg.start_soon(self._guarded, negotiation.run)
        await self._ready.wait()
        if self._connect_error is not None:
            raise self._connect_error
        self._liveness.path = await engine.path()

    # ------------------------------------------------------------------ connected

    async def _watch(self) -> None:
        assert self._engine is not None
        verdict = await self._liveness.watch(self._engine, lambda: self.gone)
        if verdict:
            self.went_away(verdict)

    async def _close(self, reason: str | None = None) -> None:
        """Bounded shutdown: flush, say bye, close the engine and the signaling."""
        budget = self.options.close_timeout
        engine = self._engine
        with anyio.move_on_after(budget, shield=True):
            if not self.gone and engine is not None:
                with anyio.move_on_after(budget / 2):
                    while self._outbox.busy and not self.gone:  # noqa: ASYNC110 - bounded
                        await anyio.sleep(0.01)
            self.went_away(CLOSED_LOCALLY)
            if self._negotiation is None or not self._negotiation.bye_received:
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
