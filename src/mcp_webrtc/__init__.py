"""mcp-webrtc: the Model Context Protocol over WebRTC data channels."""

from __future__ import annotations

from .exceptions import (
    ConfigurationError,
    ConnectError,
    ConnectFailureReason,
    ConnectTimeoutError,
    FrameError,
    MCPWebRTCError,
    MessageTooLargeError,
    OversizeMessageError,
    PeerGoneError,
    PeerIdentityError,
    ProtocolError,
    RendezvousRefused,
    SignalingError,
)
from .identity import Identity, KnownServers, PublicKey, load_identity
from .info import ConnectionInfo
from .options import LOOPBACK_ONLY, IceServer, WebRTCOptions
from .server import run_server
from .signaling import AiortcSignaling, MemorySignaling, Signaling, as_signaling
from .transport import (
    WebRTCClientTransport,
    WebRTCServerTransport,
    webrtc_client_transport,
    webrtc_server_transport,
)

__version__ = "0.2.0"

__all__ = [
    "LOOPBACK_ONLY",
    "AiortcSignaling",
    "ConfigurationError",
    "ConnectError",
    "ConnectFailureReason",
    "ConnectTimeoutError",
    "ConnectionInfo",
    "FrameError",
    "IceServer",
    "Identity",
    "KnownServers",
    "MCPWebRTCError",
    "MemorySignaling",
    "MessageTooLargeError",
    "OversizeMessageError",
    "PeerGoneError",
    "PeerIdentityError",
    "ProtocolError",
    "PublicKey",
    "RendezvousRefused",
    "Signaling",
    "SignalingError",
    "WebRTCClientTransport",
    "WebRTCOptions",
    "WebRTCServerTransport",
    "__version__",
    "as_signaling",
    "load_identity",
    "run_server",
    "webrtc_client_transport",
    "webrtc_server_transport",
]
