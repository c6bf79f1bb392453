"""The flags every command that makes WebRTC connections takes (engine, ICE, timeouts,
identity), and the :class:`~mcp_webrtc.options.WebRTCOptions` they make."""

from __future__ import annotations

import argparse
import dataclasses
import os
from collections.abc import Sequence
from typing import Any

from ..exceptions import ConfigurationError
from ..identity import load_identity
from ..options import LOOPBACK_ONLY, IceServer, WebRTCOptions


def default(cls: Any, name: str) -> Any:
    """The default of dataclass field ``name`` of ``cls``."""
    return {f.name: f.default for f in dataclasses.fields(cls)}[name]


def env_list(name: str) -> list[str]:
    return [v.strip() for v in os.environ.get(name, "").split(",") if v.strip()]


def add_ice_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("connection (engine, ICE, NAT traversal, timeouts)")
    group.add_argument(
        "--engine",
        choices=("auto", "aiortc", "libwebrtc"),
        default=os.environ.get("MCP_WEBRTC_ENGINE", default(WebRTCOptions, "engine")),
        help="WebRTC engine: libwebrtc (Chrome's, from mcp-webrtc[fast]), aiortc, or auto: "
        "libwebrtc when installed [MCP_WEBRTC_ENGINE]",
    )
    group.add_argument(
        "--stun", action="append", metavar="URL", help="STUN server [MCP_WEBRTC_STUN]"
    )
    group.add_argument(
        "--turn",
        action="append",
        metavar="URL",
        help="TURN server, e.g. turn:turn.example:3478?transport=tcp [MCP_WEBRTC_TURN]",
    )
    group.add_argument(
        "--turn-user",
        default=os.environ.get("MCP_WEBRTC_TURN_USER"),
        help="TURN username [MCP_WEBRTC_TURN_USER]",
    )
    group.add_argument(
        "--turn-pass",
        default=os.environ.get("MCP_WEBRTC_TURN_PASS"),
        help="TURN password [MCP_WEBRTC_TURN_PASS]",
    )
    group.add_argument(
        "--relay-only",
        action="store_true",
        default=os.environ.get("MCP_WEBRTC_RELAY_ONLY") == "1",
        help="use TURN-relayed candidates only [MCP_WEBRTC_RELAY_ONLY=1]",
    )
    group.add_argument(
        "--host-candidates",
        default=os.environ.get("MCP_WEBRTC_HOST_CANDIDATES"),
        metavar="LIST",
        help="comma-separated networks/addresses/interfaces allowed as host "
        "candidates, or 'loopback' [MCP_WEBRTC_HOST_CANDIDATES]",
    )
    group.add_argument(
        "--connect-timeout",
        type=float,
        default=default(WebRTCOptions, "connect_timeout"),
        metavar="SECONDS",
        help="give up connecting after this long (default %(default)s)",
    )
    group.add_argument(
        "--dead-peer-timeout",
        type=float,
        default=default(WebRTCOptions, "dead_peer_timeout"),
        metavar="SECONDS",
        help="a peer silent this long is gone (default %(default)s)",
    )
    group.add_argument(
        "--identity",
        metavar="FILE",
        help="this side's identity key (default: the one `mcp-webrtc keygen` wrote, if any)",
    )


def webrtc_options(args: argparse.Namespace, peer_keys: Sequence[str] = ()) -> WebRTCOptions:
    servers: list[IceServer] = []
    stun = args.stun if args.stun is not None else env_list("MCP_WEBRTC_STUN")
    turn = args.turn if args.turn is not None else env_list("MCP_WEBRTC_TURN")
    if stun:
        servers.append(IceServer(tuple(stun)))
    if turn:
        servers.append(IceServer(tuple(turn), args.turn_user, args.turn_pass))
    hosts: tuple[str, ...] | None = None
    if args.host_candidates:
        if args.host_candidates == "loopback":
            hosts = LOOPBACK_ONLY
        else:
            hosts = tuple(h.strip() for h in args.host_candidates.split(",") if h.strip())
    return WebRTCOptions(
        engine=args.engine,
        ice_servers=tuple(servers),
        ice_transport_policy="relay" if args.relay_only else "all",
        host_candidates=hosts,
        connect_timeout=args.connect_timeout,
        dead_peer_timeout=args.dead_peer_timeout,
        identity=load_identity(args.identity),
        expect_peer_keys=tuple(peer_keys),
    )


def required(value: str | None, flag: str, env: str) -> str:
    """``value``, which ``flag`` (or the variable ``env``) must give."""
    if not value:
        raise ConfigurationError(f"{flag} is required (or set {env})")
    return value
