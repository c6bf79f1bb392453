"""``serve``'s Prometheus metrics (``mcp-webrtc serve --metrics-port``).

Sessions, requests by method and outcome, bytes each way, request latency, and the
engine of each session. Requests are seen by the same per-session gate as the audit log
(:class:`~mcp_webrtc._core.policy.Gate`), so they cost nothing when metrics are off.

With ``serve --workers N`` every worker writes its own values and the supervisor serves
their sum (prometheus-client's multiprocess mode, ``PROMETHEUS_MULTIPROC_DIR``).
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

_PREFIX = "mcp_webrtc_serve"
#: Methods counted by name; any other a peer sends is counted as "other" (bounded labels).
METHODS = frozenset(
    (
        "initialize", "ping", "tools/list", "tools/call", "resources/list",
        "resources/templates/list", "resources/read", "resources/subscribe",
        "resources/unsubscribe", "prompts/list", "prompts/get", "completion/complete",
        "logging/setLevel",
    )
)  # fmt: skip
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class ServeMetrics:
    """The counters of one ``serve`` (one worker); see the module docstring."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry = registry if registry is not None else CollectorRegistry()
        self.workers = Gauge(
            f"{_PREFIX}_workers",
            "Worker processes serving the room.",
            registry=registry,
            multiprocess_mode="livesum",
        )
        self.sessions = Gauge(
            f"{_PREFIX}_sessions",
            "Live sessions.",
            registry=registry,
            multiprocess_mode="livesum",
        )
        self.connected = Counter(
            f"{_PREFIX}_sessions_connected",
            "Sessions connected, by engine and candidate pair type.",
            ["engine", "path"],
            registry=registry,
        )
        self.requests = Counter(
            f"{_PREFIX}_requests",
            "Requests from peers, by method and outcome (ok, error, refused, unanswered).",
            ["method", "outcome"],
            registry=registry,
        )
        self.bytes = Counter(
            f"{_PREFIX}_request_bytes",
            "Bytes of requests (in) and their answers (out).",
            ["direction"],
            registry=registry,
        )
        self.latency = Histogram(
            f"{_PREFIX}_request_seconds",
            "Time from a request to its answer, by method.",
            ["method"],
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.workers.set(1)

    def observe(self, record: dict[str, Any]) -> None:
        """Count one request, from the record the session's gate makes of it."""
        method = str(record.get("method"))
        method = method if method in METHODS else "other"
        outcome = str(record.get("outcome", ""))
        outcome = outcome.split(" ", 1)[0].rstrip(":")  # "error -32601" -> "error"
        self.requests.labels(method, outcome).inc()
        self.bytes.labels("in").inc(int(record.get("bytes_in", 0)))
        self.bytes.labels("out").inc(int(record.get("bytes_out", 0)))
        if outcome in ("ok", "error"):
            self.latency.labels(method).observe(float(record.get("duration_ms", 0)) / 1000)

    def listen(self, host: str, port: int) -> None:
        """Serve ``GET /metrics`` on ``host:port`` (a thread)."""
        start_http_server(port, host, registry=self.registry)
