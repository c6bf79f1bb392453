"""One peer's WebSocket connection to the rendezvous, as an :class:`Endpoint`.

Every message to a peer goes through that peer's own queue and writer task, so relaying
never waits for the receiver: a host serving a hundred sessions is never held up by one
client that stops reading. Each message must leave within ``send_timeout`` and at most
``max_send_queue`` bytes may wait; a peer past either limit is disconnected.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
from collections import deque
from collections.abc import Callable

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from .._core import rendezvous as proto
from .._core.rendezvous import JSONObject
from .config import RendezvousConfig

logger = logging.getLogger("mcp_webrtc.rendezvous")

#: Close codes of the protocol (docs/protocol.md, §7).
CLOSE_NORMAL = 1000


def log_event(event: str, ws: ServerConnection, **fields: object) -> None:
    """One ``key=value`` line per event; values are quoted JSON strings, never tokens."""
    remote = ws.remote_address
    where = f"{remote[0]}:{remote[1]}" if isinstance(remote, tuple) else str(remote)
    extra = " ".join(f"{k}={json.dumps(v) if isinstance(v, str) else v}" for k, v in fields.items())
    logger.info("event=%s remote=%s %s", event, where, extra)


class PeerConnection:
    """A host's or client's connection: queued, bounded, never blocking the sender."""

    def __init__(
        self,
        ws: ServerConnection,
        config: RendezvousConfig,
        observe: Callable[[JSONObject], None] | None = None,
    ) -> None:
        self.ws = ws
        #: Unique across rendezvous instances: how the backend names this peer.
        self.id = secrets.token_hex(8)
        self._observe = observe  # sees every message delivered to this peer
        self._timeout = config.send_timeout
        self._max_queue = config.max_send_queue
        self._queue: deque[str] = deque()
        self._queued = 0
        self._wake = asyncio.Event()
        self._close: tuple[int, str] | None = None  # close after the queue is flushed
        self._cut = False
        self._writer: asyncio.Task[None] | None = None

    # ---------------------------------------------------------------- Endpoint

    async def deliver(self, message: JSONObject) -> None:
        if self._observe is not None:
            self._observe(message)
        self.put(message)

    async def drop(self, code: str, reason: str) -> None:
        """Tell the peer why with an error message, then close the connection (1000)."""
        self.put(proto.error(code, reason))
        self.close_when_flushed(CLOSE_NORMAL, reason)

    # ---------------------------------------------------------------- sending

    def put(self, message: JSONObject) -> None:
        """Queue ``message``; never waits. A peer whose queue overflows is cut off."""
        if self._cut or self._close is not None:
            return
        text = proto.dumps(message)
        self._queue.append(text)
        self._queued += len(text)
        if self._queued > self._max_queue:
            self.cut(f"not reading ({self._queued} bytes waiting)")
        self._wake.set()

    def close_when_flushed(self, code: int, reason: str) -> None:
        if self._close is None:
            self._close = (code, reason[:120])
        self._wake.set()

    def cut(self, why: str) -> None:
        """Disconnect at once, dropping what is queued."""
        if self._cut:
            return
        self._cut = True
        log_event("disconnected", self.ws, reason=why)
        self._queue.clear()
        self._queued = 0
        self.ws.transport.abort()
        self._wake.set()

    def start(self) -> None:
        self._writer = asyncio.create_task(self._write())

    async def _write(self) -> None:
        while not self._cut:
            if not self._queue:
                if self._close is not None:
                    break
                self._wake.clear()
                await self._wake.wait()
                continue
            text = self._queue.popleft()
            self._queued -= len(text)
            try:
                async with asyncio.timeout(self._timeout):
                    await self.ws.send(text)
            except TimeoutError:
                self.cut(f"not reading (a message waited {self._timeout:g} s)")
            except ConnectionClosed:
                return
        if self._close is not None and not self._cut:
            with contextlib.suppress(ConnectionClosed, TimeoutError):
                async with asyncio.timeout(self._timeout):
                    await self.ws.close(*self._close)

    async def finish(self) -> None:
        """Flush what is queued and close; unread incoming messages are drained meanwhile
        (with websockets' incoming queue full, the peer's close frame could not be read)."""
        self.close_when_flushed(CLOSE_NORMAL, "")
        if self._writer is None:
            return

        async def drain() -> None:
            with contextlib.suppress(ConnectionClosed):
                async for _ in self.ws:
                    pass

        draining = asyncio.create_task(drain())
        try:
            async with asyncio.timeout(2 * self._timeout):  # a close handshake that hangs
                await asyncio.shield(self._writer)
        except TimeoutError:
            self.cut("close timed out")
        finally:
            draining.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await draining
