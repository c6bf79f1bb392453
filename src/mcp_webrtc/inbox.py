"""The receiving side of one peer: complete messages wait here for the reader.

What waits is bounded by ``max_receive_queue``: above it, an engine that can (aiortc) is
held at its receive path until the reader has caught up to half of it, so the sender is
held back by the channel's own flow control instead of filling memory.
"""

from __future__ import annotations

import asyncio
import logging

import anyio

from ._core.connection import Connection
from ._core.framing import Payload

logger = logging.getLogger("mcp_webrtc.peer")


class Inbox:
    """Messages from the peer, for :meth:`mcp_webrtc.peer.DataChannelPeer.receive`."""

    def __init__(self, core: Connection) -> None:
        self._core = core
        self._available = asyncio.Event()  # a message for the reader, or the end
        self._room = asyncio.Event()  # the reader is not behind
        self._room.set()
        self._ended = False

    def take(self, data: str | bytes) -> None:
        """One data-channel message, from the engine (never raises)."""
        note = self._core.receive(data)
        if note is not None:
            logger.warning("peer sent bad input: %s", note)
        self._available.set()
        if self._core.reader_behind:
            self._room.clear()  # the engine stops reading until the reader catches up

    def end(self) -> None:
        """No more messages come: the reader gets what waits, then the end."""
        self._ended = True
        self._available.set()
        self._room.set()

    async def receive(self) -> Payload:
        """The next message; :class:`anyio.EndOfStream` after the last one."""
        while True:
            payload = self._core.next_message()
            if payload is not None:
                if self._core.reader_caught_up:
                    self._room.set()
                return payload
            if self._ended:
                raise anyio.EndOfStream
            self._available.clear()
            await self._available.wait()

    async def wait_for_room(self) -> None:
        """Holds the engine's receive path while too much waits for the reader."""
        await self._room.wait()
