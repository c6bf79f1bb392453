"""The command line's arguments. Defaults come from the dataclasses and modules that own
them, never typed twice."""

from __future__ import annotations

import argparse
import os
from typing import Any

from .. import __version__
from ..rendezvous.config import RendezvousConfig
from ..serve import MAX_SESSIONS
from .connect import add_connect
from .flags import add_ice_flags, default
from .workers import worker_count

EPILOG = """\
examples:
  mcp-webrtc signal --port 8765 --token-file host-tokens.txt
  mcp-webrtc serve ws://rdv.example:8765/ --room laptop --token-file host.token \\
      --client-token-file client.token -- npx -y @modelcontextprotocol/server-everything
  mcp-webrtc serve ws://rdv.example:8765/ --room laptop ... --app my_package.server:mcp
  mcp-webrtc serve ws://rdv.example:8765/ --room laptop ... --url http://127.0.0.1:8000/mcp
  mcp-webrtc connect ws://rdv.example:8765/ --room laptop --token-file client.token
  mcp-webrtc connect ws://rdv.example:8765/ --room laptop ... --listen 127.0.0.1:8931
  mcp-webrtc demo

secrets: command-line flags are visible to other local users (ps, /proc); give tokens
and TURN passwords in files (--token-file, --client-token-file) or environment variables.
They are never logged, at any level, and never passed to a server that serve runs.

environment variables (used when the flag is absent):
  MCP_WEBRTC_ROOM, MCP_WEBRTC_TOKEN, MCP_WEBRTC_CLIENT_TOKEN, MCP_WEBRTC_ENGINE
  MCP_WEBRTC_STUN, MCP_WEBRTC_TURN (comma-separated URLs), MCP_WEBRTC_TURN_USER,
  MCP_WEBRTC_TURN_PASS, MCP_WEBRTC_RELAY_ONLY=1, MCP_WEBRTC_HOST_CANDIDATES
"""


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
        help="expose an MCP server (stdio command, HTTP URL or Python object) to WebRTC peers",
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
        "--url",
        dest="http_url",
        metavar="URL",
        help="a Streamable HTTP MCP server, e.g. http://127.0.0.1:8000/mcp: one HTTP MCP "
        "session per peer",
    )
    srv.add_argument(
        "--header",
        action="append",
        default=[],
        metavar="'NAME: VALUE'",
        help="sent with every request to --url (e.g. 'Authorization: Bearer ...'); values "
        "are never logged [MCP_WEBRTC_HTTP_HEADERS: one per line]",
    )
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
    add_ice_flags(srv)
    srv.set_defaults(command=[])


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
    add_connect(commands)
    _add_keygen(commands)
    _add_forget_server(commands)
    commands.add_parser("demo", help="rendezvous, server and client in one process")
    return parser
