"""Every error mcp-webrtc raises. All derive from :class:`MCPWebRTCError`.

::

    MCPWebRTCError
     ├── ConfigurationError (ValueError)     an option is invalid
     ├── SignalingError                      signaling failed or closed
     │    └── RendezvousRefused              the rendezvous answered with an error code
     ├── ConnectError (ConnectionError)      no WebRTC connection; ``reason`` says why
     │    ├── ConnectTimeoutError (TimeoutError)
     │    └── PeerIdentityError              the peer did not prove the expected key
     ├── PeerGoneError (anyio.BrokenResourceError)
     ├── MessageTooLargeError (ValueError)   nothing was sent
     ├── ProtocolError (ValueError)          a malformed rendezvous message
     ├── FrameError (ValueError)             a malformed data-channel frame
     └── OversizeMessageError (ValueError)   a received message above the limit
"""

from __future__ import annotations

import anyio

from ._core.errors import (
    ConfigurationError,
    ConnectError,
    ConnectFailureReason,
    ConnectTimeoutError,
    FrameError,
    MCPWebRTCError,
    MessageTooLargeError,
    OversizeMessageError,
    PeerIdentityError,
    ProtocolError,
    RendezvousRefused,
    SignalingError,
)


class PeerGoneError(MCPWebRTCError, anyio.BrokenResourceError):
    """The peer left, vanished (no answer within ``dead_peer_timeout``) or the channel closed.

    Derives from :class:`anyio.BrokenResourceError`, which the MCP SDK treats as a closed
    transport.
    """


__all__ = [
    "ConfigurationError",
    "ConnectError",
    "ConnectFailureReason",
    "ConnectTimeoutError",
    "FrameError",
    "MCPWebRTCError",
    "MessageTooLargeError",
    "OversizeMessageError",
    "PeerGoneError",
    "PeerIdentityError",
    "ProtocolError",
    "RendezvousRefused",
    "SignalingError",
]
