"""Every error mcp-webrtc raises. All derive from :class:`MCPWebRTCError`."""

from __future__ import annotations

import enum

import anyio


class MCPWebRTCError(Exception):
    """Base class of all mcp-webrtc errors."""


class ConfigurationError(MCPWebRTCError, ValueError):
    """An option has an invalid value, or the installed aiortc/aioice cannot honour it."""


class SignalingError(MCPWebRTCError):
    """The signaling channel failed or closed before the connection was established."""


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


class ConnectError(MCPWebRTCError, ConnectionError):
    """The WebRTC connection could not be established. ``reason`` says why."""

    def __init__(self, reason: ConnectFailureReason, detail: str = "") -> None:
        self.reason = reason
        self.detail = detail
        text = reason.value + (f" ({detail})" if detail else "")
        super().__init__(text)


class ConnectTimeoutError(ConnectError, TimeoutError):
    """No connection within ``connect_timeout``; ``reason`` names the stage that stalled."""

    def __init__(self, reason: ConnectFailureReason, timeout: float, detail: str = "") -> None:
        self.timeout = timeout
        extra = f"after {timeout:g} s" + (f"; {detail}" if detail else "")
        super().__init__(reason, extra)


class PeerGoneError(MCPWebRTCError, anyio.BrokenResourceError):
    """The peer left, vanished (no answer within ``dead_peer_timeout``) or the channel closed.

    Derives from :class:`anyio.BrokenResourceError`, which the MCP SDK treats as a closed
    transport.
    """


class MessageTooLargeError(MCPWebRTCError, ValueError):
    """A message is larger than this side's or the peer's limit. Nothing was sent."""

    def __init__(self, size: int, limit: int, who: str) -> None:
        self.size = size
        self.limit = limit
        self.who = who
        super().__init__(f"message of {size} bytes exceeds {who} limit of {limit} bytes")
