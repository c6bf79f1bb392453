"""The sending side of one peer: messages queued by the connection core's rules and handed
to the engine's channel, never faster than its buffer drains.

One sender task hands frames over; a whole message sent when nothing waits goes at once,
without a task switch. The sender is shielded from the caller's cancellation: when a
server stops, what its MCP session writes on its way out (error answers to pending
requests) still goes, and the close flushes the queue; it ends when the peer is gone.
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol

import anyio

from ._core.connection import Connection
from ._core.framing import Outgoing
from .engines.base import Engine
from .exceptions import PeerGoneError


class Owner(Protocol):
    """The peer whose outbox this is."""

    @property
    def gone(self) -> bool: ...

    @property
    def gone_reason(self) -> str: ...

    def went_away(self, reason: str) -> None: ...


class Outbox:
    """The peer's sending side (see the module docstring)."""

    def __init__(self, core: Connection, owner: Owner, high_watermark: int) -> None:
        self._core = core
        self._owner = owner
        self._high = high_watermark
        self.engine: Engine | None = None  # set once the engine exists
        self._done: dict[Outgoing, asyncio.Event] = {}
        self._wake = asyncio.Event()  # frames to send
        self._drained = asyncio.Event()  # the channel's buffer fell low

    @property
    def buffered_amount(self) -> int:
        return self.engine.buffered_amount if self.engine is not None else 0

    @property
    def busy(self) -> bool:
        """Whether anything waits to be sent or sits in the channel's buffer."""
        return self._core.frames_waiting or self.buffered_amount > 0

    async def send(self, text: str) -> None:
        """Queue one message and wait until the channel took its last frame (see
        :meth:`mcp_webrtc.peer.DataChannelPeer.send`)."""
        if self._owner.gone:
            raise PeerGoneError(self._owner.gone_reason)
        idle = not self._core.frames_waiting
        item = self._core.send(text)
        if idle and item.chunk_size is None and self._send_now():
            return  # a whole message on an idle channel: no task switch for it
        done = self._done[item] = asyncio.Event()
        self._wake.set()
        try:
            await done.wait()
        except BaseException:
            abort = self._core.withdraw(item)
            if abort is not None and not self._owner.gone:
                self.send_frame(abort)
            raise
        finally:
            self._done.pop(item, None)
        if not item.delivered:
            raise PeerGoneError(self._owner.gone_reason)

    def _send_now(self) -> bool:
        if self.buffered_amount > self._high:
            return False
        popped = self._core.next_frame()
        assert popped is not None
        frame, item = popped
        if not self.send_frame(frame):
            raise PeerGoneError(self._owner.gone_reason)
        self._core.frame_sent(frame, item)
        return True

    def answer(self, text: str) -> None:
        """Queue an error answer (rate-limited by the core); never waits."""
        if not self._owner.gone and self._core.answer(text):
            self._wake.set()

    def send_frame(self, frame: str | bytes) -> bool:
        """Hand one data-channel message to the engine as it is."""
        if self.engine is None:
            return False
        try:
            self.engine.send(frame)
        except ConnectionError as exc:
            self._owner.went_away(str(exc))
            return False
        return True

    def wake(self) -> None:
        """Frames were queued outside :meth:`send` (error answers)."""
        self._wake.set()

    def drained(self) -> None:
        self._drained.set()

    def release(self) -> None:
        """The peer is gone: every waiting sender and the sender task return."""
        for event in (self._wake, self._drained, *self._done.values()):
            event.set()

    async def run(self) -> None:
        """The sender task, until the peer is gone (shielded: see the module docstring)."""
        with anyio.CancelScope(shield=True):
            await self._hand_over()
        self.release()

    async def _hand_over(self) -> None:
        core, owner = self._core, self._owner
        while not owner.gone:
            if self.buffered_amount > self._high:  # wait *before* taking a frame: a frame
                self._drained.clear()  # taken is sent at once, never held across an await
                full, since = self.buffered_amount, time.perf_counter()
                await self._drained.wait()
                # the drop is what the channel moved (only whole messages sent after the
                # drain, by send()'s fast path, can have been added meanwhile)
                core.channel_moved(full - self.buffered_amount, time.perf_counter() - since)
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
