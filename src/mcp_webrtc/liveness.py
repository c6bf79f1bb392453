"""Dead-peer detection: a peer is gone ``dead_peer_timeout`` seconds after its last sign
of life, to the deadline (docs/protocol.md, §6).

Signs of life are data from the peer and ICE checks it answered: the engine reports when
it last heard the peer (aiortc: our own consent check, sent on demand; libwebrtc: its own
checks, read from its stats). A peer silent for ``quiet_after`` seconds is probed every
``interval`` until it is heard; a busy one (whose data proves life already) only every
``REFRESH`` seconds, to keep its path and round trip fresh. Probes are not free: in
libwebrtc (wrtc 0.1) a stats report costs Python work in proportion to the process's
open connections, so at 200 busy peers probing each every 5 s took a fifth of a host's
CPU. The probes run beside the watch, so a slow probe never delays the verdict.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable

import anyio

from .engines.base import Engine, PathInfo

#: Seconds between probes of a busy peer (path and round trip only).
REFRESH = 30.0


class Liveness:
    """When the peer was last heard, its path and round trip, and the watch on them."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.interval = max(0.1, min(1.0, timeout / 10))
        self.quiet_after = min(2.0, timeout / 5)
        self.last_alive = time.monotonic()
        #: The selected candidate pair and round trip, as last read from the engine.
        self.path = PathInfo(None, None, None)

    def heard(self) -> None:
        """The peer just sent something."""
        self.last_alive = time.monotonic()

    async def watch(self, engine: Engine, gone: Callable[[], bool]) -> str:
        """Return why the peer is dead, once it is (or ``""`` once ``gone()``)."""
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._probe, engine)
            while not gone():
                silent = time.monotonic() - self.last_alive
                if silent >= self.timeout:
                    tg.cancel_scope.cancel()
                    return f"no answer from the peer for {silent:.1f} s"
                await anyio.sleep(self.timeout - silent)
            tg.cancel_scope.cancel()
        return ""

    async def _probe(self, engine: Engine) -> None:
        # A random phase, so that the refreshes of a host's many peers spread out.
        last_probe = time.monotonic() - random.uniform(0, REFRESH)
        while True:
            now = time.monotonic()
            if now - self.last_alive >= self.quiet_after or now - last_probe >= REFRESH:
                last_probe = now
                heard, self.path = await engine.probe()
                if heard is not None:
                    self.last_alive = max(self.last_alive, heard)
            await anyio.sleep(self.interval)
