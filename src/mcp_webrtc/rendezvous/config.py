"""Everything the rendezvous server can be told, and the policies that follow from it."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from urllib.parse import urlsplit

from .._core import rendezvous as proto
from .._core.rendezvous import JSONObject
from ..exceptions import ConfigurationError

MiB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class RendezvousConfig:
    """Everything the rendezvous server can be told.

    Attributes:
        host, port: Where to listen (``port=0`` picks a free port).
        host_tokens: Tokens that may register rooms. Empty: anyone may register (for a
            private network or tests only; a warning is logged).
        max_message_size: Largest WebSocket message accepted, in bytes (SDPs are ~1-5 KB).
        max_rooms: Rooms registered at once.
        max_sessions_per_room: Clients joined to one room at once.
        rate, burst: Messages per second a client may send on average, and in a burst; a
            client above it is refused and closed. A host has this budget *per session*
            it serves (and once more for itself): a host over a session's budget has that
            session refused, a host over its own budget is slowed down; a host is never
            disconnected for its rate while it serves sessions.
        allowed_origins: Browser origins allowed to connect (``Origin`` header), e.g.
            ``https://app.example.org``. Connections without an Origin (programs, not
            browsers) are always allowed, and so are loopback origins (``localhost``,
            ``127.0.0.0/8``, ``[::1]``) unless ``allow_loopback_origins`` is off.
        public_url: The URL browsers use to reach this server when it differs from where
            it listens (behind a TLS-terminating proxy: ``https://rdv.example.org/``). Its
            origin is admitted, so the inspector page served through the proxy works.
        allow_loopback_origins: Admit pages served from loopback addresses (the inspector
            opened on this machine). The ``Host`` header is never trusted for this: a page
            whose origin merely equals the Host it sent (DNS rebinding) is refused.
        tls_cert, tls_key: PEM files; with both set the server speaks ``wss://``.
        stun_urls: STUN URLs handed to every peer.
        turn_urls: TURN URLs handed to every peer, with credentials from ``turn_secret``
            (coturn ``use-auth-secret``, valid ``turn_ttl`` seconds, made afresh for each
            session) or the static ``turn_username``/``turn_password``.
        hello_timeout: Seconds a new connection has to register or join.
        send_timeout: Seconds a message to a peer may wait for that peer to read it; a
            peer that stops reading is disconnected. Messages to one peer never wait for
            another.
        max_send_queue: Bytes that may wait for one peer; beyond, it is disconnected.
        redis_url: ``redis://HOST:PORT/DB`` (or ``rediss://``, ``unix://``): keep rooms,
            host pools and sessions in Redis, shared by every instance given the same URL
            and prefix (needs ``mcp-webrtc[redis]``). ``None``: in this process.
        redis_prefix: Prefix of every Redis key, so several deployments can share a Redis.
        instance_ttl: Seconds after which an instance that stopped refreshing its
            heartbeat in Redis counts as dead: another instance ends its sessions and takes
            its hosts out of their pools (they register again elsewhere). The heartbeat
            runs every third of it.
        backend_timeout: Seconds a Redis command may take before the rendezvous answers
            ``backend-unavailable``.
        metrics: Serve ``GET /metrics`` (Prometheus text format).
    """

    host: str = "127.0.0.1"
    port: int = 8765
    host_tokens: tuple[str, ...] = ()
    max_message_size: int = 64 * 1024
    max_rooms: int = 1000
    max_sessions_per_room: int = 1000
    rate: float = 50.0
    burst: float = 200.0
    allowed_origins: tuple[str, ...] = ()
    public_url: str | None = None
    allow_loopback_origins: bool = True
    tls_cert: str | None = None
    tls_key: str | None = None
    stun_urls: tuple[str, ...] = ()
    turn_urls: tuple[str, ...] = ()
    turn_secret: str | None = None
    turn_ttl: float = 3600.0
    turn_username: str | None = None
    turn_password: str | None = None
    hello_timeout: float = 10.0
    send_timeout: float = 5.0
    max_send_queue: int = 4 * MiB
    redis_url: str | None = None
    redis_prefix: str = "mcp-webrtc"
    instance_ttl: float = 5.0
    backend_timeout: float = 1.0
    metrics: bool = True

    def __post_init__(self) -> None:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ConfigurationError("TLS needs both tls_cert and tls_key")
        if self.turn_urls and not self.turn_secret and not self.turn_username:
            raise ConfigurationError("turn_urls need turn_secret or turn_username/turn_password")
        if self.redis_url is not None and urlsplit(self.redis_url).scheme not in _REDIS_SCHEMES:
            raise ConfigurationError("redis_url must be a redis://, rediss:// or unix:// URL")
        positive = ("rate", "burst", "hello_timeout", "send_timeout", "turn_ttl", "instance_ttl")
        for name in (*positive, "backend_timeout"):
            if not getattr(self, name) > 0:
                raise ConfigurationError(f"{name} must be positive")
        for name in ("max_message_size", "max_rooms", "max_sessions_per_room", "max_send_queue"):
            if getattr(self, name) < 1:
                raise ConfigurationError(f"{name} must be at least 1")
        for origin in (*self.allowed_origins, *([self.public_url] if self.public_url else [])):
            if _origin_of(origin) is None:
                raise ConfigurationError(f"not an http(s) origin or URL: {origin!r}")

    def ice_servers(self, name: str) -> list[JSONObject]:
        """The ``iceServers`` list handed to a peer (TURN credentials made for ``name``)."""
        servers: list[JSONObject] = []
        if self.stun_urls:
            servers.append({"urls": list(self.stun_urls)})
        if self.turn_urls:
            if self.turn_secret:
                user, password = proto.turn_rest_credentials(self.turn_secret, name, self.turn_ttl)
            else:
                user, password = self.turn_username or "", self.turn_password or ""
            servers.append({"urls": list(self.turn_urls), "username": user, "credential": password})
        return servers

    def origin_allowed(self, origin: str | None) -> bool:
        """Whether a WebSocket with this ``Origin`` header may connect (see the class)."""
        if origin is None:
            return True  # not a browser
        normalized = _origin_of(origin)
        if normalized is None:
            return False
        admitted = {_origin_of(o) for o in self.allowed_origins}
        if self.public_url:
            admitted.add(_origin_of(self.public_url))
        if normalized in admitted:
            return True
        return self.allow_loopback_origins and _is_loopback(urlsplit(normalized).hostname)


_REDIS_SCHEMES = ("redis", "rediss", "unix")


def _origin_of(url: str) -> str | None:
    """``scheme://host[:port]`` of an http(s) URL or origin, lower-cased; else ``None``."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    host = parts.hostname
    if ":" in host:
        host = f"[{host}]"
    default = 443 if parts.scheme == "https" else 80
    return f"{parts.scheme}://{host}" + ("" if port in (None, default) else f":{port}")


def _is_loopback(host: str | None) -> bool:
    if host is None:
        return False
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
