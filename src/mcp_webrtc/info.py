"""What a live connection looks like from outside: :class:`ConnectionInfo`."""

from __future__ import annotations

from dataclasses import dataclass

from ._core.connection import Connection
from .engines.base import PathInfo


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
    #: Round trip on the selected pair (latest ICE check), in seconds; read from the
    #: engine when the peer goes quiet, and at least every 30 s.
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
    #: The peer's verified identity (the public key line it signed with), if it has one.
    peer_key: str | None = None

    @classmethod
    def of(cls, core: Connection, path: PathInfo, label: str, engine: str) -> ConnectionInfo:
        local, remote = path.local, path.remote
        return cls(
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
            channel_label=label,
            peer_chunking=bool(core.remote and core.remote.chunking),
            peer_max_message_size=core.peer_limit,
            compression=core.compressing,
            engine=engine,
            peer_key=core.peer_key.line if core.peer_key else None,
        )
