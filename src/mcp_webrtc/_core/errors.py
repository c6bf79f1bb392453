"""The exception tree, rooted at :class:`MCPWebRTCError`. Pure: no I/O, no engine.

:mod:`mcp_webrtc.exceptions` re-exports all of these and adds the one error that derives
from an I/O library's class (:class:`~mcp_webrtc.exceptions.PeerGoneError`).
"""

from __future__ import annotations

import enum


class MCPWebRTCError(Exception):
    """Base class of all mcp-webrtc errors."""


class ConfigurationError(MCPWebRTCError, ValueError):
    """An option has an invalid value, or the installed engine cannot honour it."""


class SignalingError(MCPWebRTCError):
    """The signaling channel failed or closed before the connection was established."""


class RendezvousRefused(SignalingError):
    """The rendezvous refused a request. ``code`` is the protocol's error code
    (``unauthorized``, ``room-taken``, ``room-full``, ``rate-limited``...), ``message`` its
    human-readable text (docs/protocol.md, §7)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"rendezvous refused: {message} ({code})")
        self.code = code
        self.message = message


class ProtocolError(MCPWebRTCError, ValueError):
    """A rendezvous message is malformed. ``code`` is the error code to answer with."""

    def __init__(self, message: str, code: str = "bad-message") -> None:
        super().__init__(message)
        self.code = code


class FrameError(MCPWebRTCError, ValueError):
    """A received data-channel frame violates the framing rules (docs/protocol.md, §5)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class OversizeMessageError(MCPWebRTCError, ValueError):
    """A received message is larger than the local limit; it was (or is being) discarded.
    ``head`` holds its first bytes, to find a request's id for the error answer."""

    def __init__(self, size: int, limit: int, head: bytes) -> None:
        super().__init__(f"incoming message of {size} bytes exceeds the limit of {limit} bytes")
        self.size = size
        self.limit = limit
        self.head = head


class MessageTooLargeError(MCPWebRTCError, ValueError):
    """A message is larger than this side's or the peer's limit. Nothing was sent."""

    def __init__(self, size: int, limit: int, who: str) -> None:
        self.size = size
        self.limit = limit
        self.who = who
        super().__init__(f"message of {size} bytes exceeds {who} limit of {limit} bytes")


class ConnectFailureReason(enum.Enum):
    """Why a connection could not be established."""

    #: No offer or answer arrived over signaling in time.
    NO_REMOTE_DESCRIPTION = "no offer or answer arrived over signaling"
    #: This side gathered no ICE candidate (address filter too strict, TURN unreachable...).
    NO_LOCAL_CANDIDATES = "no local ICE candidates were gathered"
    #: The peer sent no ICE candidate, in its description or trickled.
    NO_REMOTE_CANDIDATES = "the peer sent no ICE candidates"
    #: Candidates on both sides, but no candidate pair passed connectivity checks.
    ICE_FAILED = "ICE connectivity checks found no working path"
    #: ICE connected but the DTLS handshake did not complete.
    DTLS_FAILED = "the DTLS handshake did not complete"
    #: The transport is up but the data channel did not open.
    CHANNEL_NOT_OPENED = "the data channel did not open"
    #: The peer said bye, or its signaling closed, before the connection was up.
    PEER_LEFT = "the peer left before the connection was established"
    #: The peer's description is not signed by the identity key expected of it.
    PEER_IDENTITY = "the peer's identity could not be verified"


class ConnectError(MCPWebRTCError, ConnectionError):
    """The WebRTC connection could not be established. ``reason`` says why."""

    def __init__(self, reason: ConnectFailureReason, detail: str = "") -> None:
        self.reason = reason
        self.detail = detail
        text = reason.value + (f" ({detail})" if detail else "")
        super().__init__(text)


class PeerIdentityError(ConnectError):
    """The peer did not prove the identity expected of it: its description was unsigned,
    signed by another key, or altered on the way. Raised before any MCP message is sent."""

    def __init__(self, detail: str) -> None:
        super().__init__(ConnectFailureReason.PEER_IDENTITY, detail)


class ConnectTimeoutError(ConnectError, TimeoutError):
    """No connection within ``connect_timeout``; ``reason`` names the stage that stalled."""

    def __init__(self, reason: ConnectFailureReason, timeout: float, detail: str = "") -> None:
        self.timeout = timeout
        extra = f"after {timeout:g} s" + (f"; {detail}" if detail else "")
        super().__init__(reason, extra)
