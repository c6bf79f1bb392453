"""A host's rate budget at the rendezvous (docs/protocol.md, §7)."""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict

from .._core.ratelimit import TokenBucket
from .._core.rendezvous import JSONObject
from .config import RendezvousConfig


class HostLimiter:
    """A host's rate budget: one token bucket per session it was told of, one for itself.

    The host's one connection carries the signaling of every session, so its budget grows
    with them. A message naming a session the host was told of (``peer-joined``), live or
    ended, is charged to that session: over budget, a live session is refused (the caller
    ends it), an ended one slows the host down. Anything else (made-up sessions, malformed
    messages) is charged to the host's own bucket and only ever slows it down. A host is
    never disconnected for its rate.
    """

    def __init__(self, config: RendezvousConfig) -> None:
        self._rate, self._burst = config.rate, config.burst
        self._own = TokenBucket(config.rate, config.burst)
        self._sessions: OrderedDict[str, TokenBucket] = OrderedDict()
        self._max = 2 * config.max_sessions_per_room  # ended ones the host never left

    def saw(self, message: JSONObject) -> None:
        """Observe what is delivered to the host: each ``peer-joined`` opens a budget."""
        if message.get("type") == "peer-joined":
            self._sessions[message["session"]] = TokenBucket(self._rate, self._burst)
            while len(self._sessions) > self._max:
                self._sessions.popitem(last=False)

    async def admit(self, session: str | None, *, live: bool) -> bool:
        """Charge one message; ``False`` means: refuse that (live) session."""
        bucket = self._sessions.get(session) if session is not None else None
        if bucket is None or not bucket.allow(time.monotonic()):
            if bucket is not None and live:
                return False
            await self.pace()
        return True

    def forget(self, session: str) -> None:
        self._sessions.pop(session, None)

    async def pace(self) -> None:
        """Wait until the host's own budget allows one more message."""
        while not self._own.allow(time.monotonic()):  # noqa: ASYNC110 - a clock, no event
            await asyncio.sleep(self._own.delay())
