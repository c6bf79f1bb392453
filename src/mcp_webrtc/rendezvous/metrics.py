"""The rendezvous's Prometheus metrics (``GET /metrics``), one registry per server.

Counters and histograms are this instance's; the ``rooms``, ``hosts`` and ``sessions``
gauges are read from the backend at each scrape, so with a shared backend they count every
instance's (``connected`` counts this instance's own connections).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable
from typing import TypeVar

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info, generate_latest

from .._core import rendezvous as proto
from ..exceptions import RendezvousRefused
from .backend import RendezvousBackend

T = TypeVar("T")

_PREFIX = "mcp_webrtc_rendezvous"
#: Backend calls take microseconds in memory, about a millisecond on a local Redis.
_BACKEND_BUCKETS = (0.0001, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)


class RendezvousMetrics:
    """What one rendezvous instance counts (see the module docstring)."""

    def __init__(self, instance: str, backend: str) -> None:
        self.registry = registry = CollectorRegistry(auto_describe=True)
        info = Info(f"{_PREFIX}_instance", "This rendezvous instance.", registry=registry)
        info.info({"instance": instance, "backend": backend})
        self.rooms = Gauge(
            f"{_PREFIX}_rooms", "Rooms registered (all instances).", registry=registry
        )
        self.hosts = Gauge(
            f"{_PREFIX}_hosts", "Hosts registered (all instances).", registry=registry
        )
        self.sessions = Gauge(
            f"{_PREFIX}_sessions", "Live sessions (all instances).", registry=registry
        )
        self.connected = Gauge(
            f"{_PREFIX}_connected",
            "Hosts and clients connected to this instance.",
            ["role"],
            registry=registry,
        )
        self.registers = Counter(
            f"{_PREFIX}_registers", "Hosts registered here.", registry=registry
        )
        self.joins = Counter(f"{_PREFIX}_joins", "Clients joined here.", registry=registry)
        self.refusals = Counter(
            f"{_PREFIX}_refusals",
            "Registers and joins refused, by code.",
            ["code"],
            registry=registry,
        )
        self.signals = Counter(
            f"{_PREFIX}_signals_relayed", "Signal messages relayed.", ["by"], registry=registry
        )
        self.signal_bytes = Counter(
            f"{_PREFIX}_signal_bytes",
            "Bytes of relayed signal messages, as received.",
            registry=registry,
        )
        self.rate_limited = Counter(
            f"{_PREFIX}_rate_limited", "Rate limit hits, by who.", ["who"], registry=registry
        )
        self.backend_seconds = Histogram(
            f"{_PREFIX}_backend_seconds",
            "Latency of backend calls, by operation.",
            ["op"],
            buckets=_BACKEND_BUCKETS,
            registry=registry,
        )
        self.backend_errors = Counter(
            f"{_PREFIX}_backend_errors",
            "Backend calls that failed, by operation.",
            ["op"],
            registry=registry,
        )

    async def timed(self, op: str, call: Awaitable[T]) -> T:
        """Await one backend call, counting its latency and whether the store failed."""
        start = time.perf_counter()
        try:
            return await call
        except RendezvousRefused as exc:
            if exc.code == proto.BACKEND_UNAVAILABLE:
                self.backend_errors.labels(op).inc()
            raise
        finally:
            self.backend_seconds.labels(op).observe(time.perf_counter() - start)

    async def exposition(self, backend: RendezvousBackend) -> bytes:
        """The text format, with the backend's gauges read now."""
        try:
            counts = await self.timed("counts", backend.counts())
        except RendezvousRefused:
            pass  # the gauges keep their last values; backend_errors says why
        else:
            self.rooms.set(counts.rooms)
            self.hosts.set(counts.hosts)
            self.sessions.set(counts.sessions)
        return generate_latest(self.registry)
