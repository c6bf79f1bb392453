"""The command line's arguments. Defaults come from the dataclasses and modules that own
them, never typed twice."""

from __future__ import annotations

import argparse
import dataclasses
import os
from collections.abc import Sequence
from typing import Any

from .. import __version__
from ..identity import load_identity
from ..options import LOOPBACK_ONLY, IceServer, WebRTCOptions
from ..proxy import EOF_TIMEOUT
from ..rendezvous.config import RendezvousConfig
from ..serve import MAX_SESSIONS
from .workers import worker_count

EPILOG = """\
examples:
  mcp-webrtc signal --port 8765 --token-file host-tokens.txt
  mcp-webrtc serve ws://rdv.example:8765/ --room laptop --token-file host.token \\
      --client-token-file client.token -- npx -y @modelcontextprotocol/server-everything
  mcp-webrtc serve ws://rdv.example:8765/ --room laptop ... --app my_package.server:mcp
  mcp-webrtc connect ws://rdv.example:8765/ --room laptop --token-file client.token
  mcp-webrtc demo

secrets: command-line flags are visible to other local users (ps, /proc); give tokens
and TURN passwords in files (--token-file, --client-token-file) or environment variables.
They are never logged, at any level, and never passed to a server that serve runs.

environment variables (used when the flag is absent):
  MCP_WEBRTC_ROOM, MCP_WEBRTC_TOKEN, MCP_WEBRTC_CLIENT_TOKEN, MCP_WEBRTC_ENGINE
  MCP_WEBRTC_STUN, MCP_WEBRTC_TURN (comma-separated URLs), MCP_WEBRTC_TURN_USER,
  MCP_WEBRTC_TURN_PASS, MCP_WEBRTC_RELAY_ONLY=1, MCP_WEBRTC_HOST_CANDIDATES
"""


def default(cls: Any, name: str) -> Any:
    """The default of dataclass field ``name`` of ``cls``."""
    return {f.name: f.default for f in dataclasses.fields(cls)}[name]


def _env_list(name: str) -> list[str]:
    return [v.strip() for v in os.environ.get(name, "").split(",") if v.strip()]


def _add_ice_flags(parser: argparse.ArgumentParser) -> None:
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
    stun = args.stun if args.stun is not None else _env_list("MCP_WEBRTC_STUN")
    turn = args.turn if args.turn is not None else _env_list("MCP_WEBRTC_TURN")
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


def _add_signal(commands: Any) -> None:
    sig = commands.add_parser(
        "signal",
        help="run the rendezvous (signaling) server",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="example:\n  mcp-webrtc signal --port 8765 --token-file host-tokens.txt",
    )
    sig.add_argument("--host", default=default(RendezvousConfig, "host"), help="listen address")
    sig.add_argument("--port", type=int, default=default(RendezvousConfig, "port"))
    sig.add_argument(
        "--host-token", action="append", metavar="TOKEN", help="token allowed to register rooms"
    )
    sig.add_argument("--token-file", help="file with one host token per line")
    sig.add_argument("--tls-cert", help="PEM certificate (serve wss://)")
    sig.add_argument("--tls-key", help="PEM private key")
    sig.add_argument("--stun-url", action="append", metavar="URL", help="STUN URL for peers")
    sig.add_argument("--turn-url", action="append", metavar="URL", help="TURN URL for peers")
    sig.add_argument("--turn-secret", help="coturn static-auth-secret: time-limited credentials")
    sig.add_argument(
        "--turn-ttl", type=float, default=default(RendezvousConfig, "turn_ttl"), metavar="S"
    )
    sig.add_argument("--turn-user", help="static TURN username (without --turn-secret)")
    sig.add_argument("--turn-pass", help="static TURN password")
    sig.add_argument(
        "--allow-origin",
        action="append",
        metavar="ORIGIN",
        help="browser origin allowed to connect, e.g. https://app.example.org (repeatable; "
        "loopback origins are allowed by default)",
    )
    sig.add_argument(
        "--public-url",
        metavar="URL",
        help="the URL browsers use, e.g. https://rdv.example.org/ behind a TLS proxy: its "
        "origin is allowed",
    )
    sig.add_argument(
        "--no-loopback-origins",
        action="store_true",
        help="refuse pages served from loopback addresses too",
    )
    sig.add_argument("--max-rooms", type=int, default=default(RendezvousConfig, "max_rooms"))
    sig.add_argument(
        "--max-sessions",
        type=int,
        default=default(RendezvousConfig, "max_sessions_per_room"),
        help="sessions per room",
    )
    sig.add_argument(
        "--max-message-size", type=int, default=default(RendezvousConfig, "max_message_size")
    )
    sig.add_argument(
        "--rate",
        type=float,
        default=default(RendezvousConfig, "rate"),
        help="messages/s per client, and per session of a host",
    )
    sig.add_argument("--burst", type=float, default=default(RendezvousConfig, "burst"))
    scale = sig.add_argument_group("several instances (docs/deployment.md)")
    scale.add_argument(
        "--redis",
        metavar="URL",
        default=os.environ.get("MCP_WEBRTC_REDIS_URL"),
        help="redis://HOST:PORT/DB shared by every instance (needs mcp-webrtc[redis]); a URL "
        "with a password belongs in MCP_WEBRTC_REDIS_URL, not on the command line",
    )
    scale.add_argument("--redis-prefix", default=default(RendezvousConfig, "redis_prefix"))
    scale.add_argument(
        "--instance-ttl",
        type=float,
        metavar="S",
        default=default(RendezvousConfig, "instance_ttl"),
        help="an instance silent this long is dead: its hosts and sessions are released",
    )
    scale.add_argument("--no-metrics", action="store_true", help="do not serve GET /metrics")


def _add_serve(commands: Any) -> None:
    srv = commands.add_parser(
        "serve",
        help="expose an MCP server (stdio command or Python object) to WebRTC peers",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Everything after -- is the stdio MCP server to run, one process per peer. It\n"
        "gets the MCP SDK's default environment (PATH, HOME, ...) plus --env and --pass-env,\n"
        "never MCP_WEBRTC_* variables.\n\n"
        "examples:\n  mcp-webrtc serve URL --room R --token-file T --client-token-file C -- "
        "python my_server.py\n  mcp-webrtc serve URL --room R ... --pass-env GITHUB_TOKEN "
        "--env LOG_LEVEL=debug -- npx my-server\n  mcp-webrtc serve URL --room R ... "
        "--app pkg.module:mcp",
    )
    srv.add_argument(
        "url",
        help="rendezvous URL, ws://host:port/ or wss://...; several, comma-separated: "
        "instances sharing a Redis, tried in turn",
    )
    srv.add_argument("--room", default=os.environ.get("MCP_WEBRTC_ROOM"))
    srv.add_argument("--token", help="host token [MCP_WEBRTC_TOKEN]")
    srv.add_argument("--token-file", metavar="FILE", help="file holding the host token")
    srv.add_argument(
        "--client-token", help="token clients must present to join [MCP_WEBRTC_CLIENT_TOKEN]"
    )
    srv.add_argument("--client-token-file", metavar="FILE", help="file holding the client token")
    srv.add_argument("--app", help="module:attribute of an MCPServer/FastMCP/Server object")
    srv.add_argument(
        "--env", action="append", default=[], metavar="KEY=VALUE", help="set in the server"
    )
    srv.add_argument(
        "--pass-env",
        action="append",
        default=[],
        metavar="KEY",
        help="pass this variable of serve's environment to the server",
    )
    srv.add_argument("--max-sessions", type=int, default=MAX_SESSIONS)
    srv.add_argument(
        "--authorized-keys",
        metavar="FILE",
        help="only clients proving one of these keys connect (one public key line each, "
        'as `mcp-webrtc keygen` prints, optionally after tools="a,b", resources="uri*", '
        'prompts="p": what that client may use; # comments)',
    )
    srv.add_argument(
        "--client-tokens",
        metavar="FILE",
        help="further client tokens, one '[options] <label> <token>' per line: the label "
        'names the client in the audit log and options such as tools="a,b" limit it',
    )
    srv.add_argument(
        "--audit",
        metavar="FILE",
        help="append one JSON line per request (time, peer, method, name, duration, bytes, "
        "outcome; '-' for stderr)",
    )
    srv.add_argument(
        "--audit-payloads",
        action="store_true",
        help="also record each request's params and answer (they may hold secrets)",
    )
    scale = srv.add_argument_group("scale and metrics")
    scale.add_argument(
        "--workers",
        type=worker_count,
        default=1,
        metavar="N",
        help="worker processes, each a host in the room's pool ('auto': one per CPU); a "
        "crashed worker is restarted",
    )
    scale.add_argument(
        "--metrics-port",
        type=int,
        metavar="PORT",
        help="serve Prometheus metrics at http://HOST:PORT/metrics (sessions, requests, "
        "bytes, latency; summed over workers)",
    )
    scale.add_argument("--metrics-host", default="127.0.0.1", help="address of --metrics-port")
    _add_ice_flags(srv)
    srv.set_defaults(command=[])


def _add_connect(commands: Any) -> None:
    con = commands.add_parser(
        "connect",
        help="stdio proxy to a remote WebRTC MCP server (for any stdio MCP client)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Only JSON-RPC goes to stdout. When the server goes away, pending requests get "
        "an\nerror and connect exits (status 1); on end of stdin it delivers the answers "
        "still\ndue, then exits (status 0).\n\n"
        "example:\n  mcp-webrtc connect ws://rdv:8765/ --room laptop --token-file client.token",
    )
    con.add_argument(
        "url", help="rendezvous URL (several, comma-separated: the first that answers)"
    )
    con.add_argument("--room", default=os.environ.get("MCP_WEBRTC_ROOM"))
    con.add_argument(
        "--token", help="the room's client token [MCP_WEBRTC_CLIENT_TOKEN, MCP_WEBRTC_TOKEN]"
    )
    con.add_argument("--token-file", metavar="FILE", help="file holding the client token")
    con.add_argument(
        "--wait",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="keep retrying this long while the room does not exist yet (a server that "
        "starts later) or the rendezvous is unreachable",
    )
    con.add_argument(
        "--eof-timeout",
        type=float,
        default=EOF_TIMEOUT,
        metavar="SECONDS",
        help="after end of stdin, wait this long for the answers still due",
    )
    con.add_argument(
        "--server-key",
        action="append",
        default=[],
        metavar="KEY",
        help="the server's public key line: refuse any other (default: trust the key seen "
        "first for this rendezvous and room, as recorded in --known-servers)",
    )
    con.add_argument(
        "--known-servers",
        metavar="FILE",
        help="where server keys seen first are recorded (default: known_servers in the "
        "configuration directory)",
    )
    _add_ice_flags(con)


def _add_keygen(commands: Any) -> None:
    gen = commands.add_parser(
        "keygen",
        help="create an identity key (Ed25519) and print its public key line",
    )
    gen.add_argument("--out", metavar="FILE", help="where to write the private key")
    gen.add_argument("--comment", default="", help="comment after the public key")
    gen.add_argument("--force", action="store_true", help="replace an existing key file")


def _add_forget_server(commands: Any) -> None:
    forget = commands.add_parser(
        "forget-server",
        help="forget the key recorded for a room (after its server changed key on purpose)",
    )
    forget.add_argument("url", help="rendezvous URL, as given to connect")
    forget.add_argument("--room", default=os.environ.get("MCP_WEBRTC_ROOM"))
    forget.add_argument("--known-servers", metavar="FILE", help="the known-servers file")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mcp-webrtc",
        description="MCP over WebRTC data channels: a rendezvous, a server bridge and a "
        "client bridge.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"mcp-webrtc {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging")
    commands = parser.add_subparsers(dest="name", required=True, metavar="COMMAND")
    _add_signal(commands)
    _add_serve(commands)
    _add_connect(commands)
    _add_keygen(commands)
    _add_forget_server(commands)
    commands.add_parser("demo", help="rendezvous, server and client in one process")
    return parser
