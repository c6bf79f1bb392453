"""The ``mcp-webrtc`` command: signal, serve, connect, demo.

Logs go to stderr; ``connect`` writes only JSON-RPC to stdout. uvloop is used when
installed (``pip install 'mcp-webrtc[fast]'``).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
import time
from collections.abc import Sequence
from typing import Any

import anyio

from . import __version__
from .exceptions import MCPWebRTCError
from .options import LOOPBACK_ONLY, IceServer, WebRTCOptions

logger = logging.getLogger("mcp_webrtc.cli")

EPILOG = """\
examples:
  mcp-webrtc signal --port 8765 --host-token "$HOST_TOKEN"
  mcp-webrtc serve ws://rdv.example:8765/ --room laptop --token "$HOST_TOKEN" \\
      --client-token "$CLIENT_TOKEN" -- npx -y @modelcontextprotocol/server-everything
  mcp-webrtc serve ws://rdv.example:8765/ --room laptop --token T --client-token C \\
      --app my_package.server:mcp
  mcp-webrtc connect ws://rdv.example:8765/ --room laptop --token "$CLIENT_TOKEN"
  mcp-webrtc demo

environment variables (used when the flag is absent):
  MCP_WEBRTC_ROOM, MCP_WEBRTC_TOKEN, MCP_WEBRTC_CLIENT_TOKEN
  MCP_WEBRTC_STUN, MCP_WEBRTC_TURN (comma-separated URLs), MCP_WEBRTC_TURN_USER,
  MCP_WEBRTC_TURN_PASS, MCP_WEBRTC_RELAY_ONLY=1, MCP_WEBRTC_HOST_CANDIDATES
"""


def _env_list(name: str) -> list[str]:
    return [v.strip() for v in os.environ.get(name, "").split(",") if v.strip()]


def _add_ice_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("ICE (NAT traversal)")
    group.add_argument(
        "--stun",
        action="append",
        default=None,
        metavar="URL",
        help="STUN server, e.g. stun:stun.example:3478 [MCP_WEBRTC_STUN]",
    )
    group.add_argument(
        "--turn",
        action="append",
        default=None,
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
    group.add_argument("--connect-timeout", type=float, default=20.0, metavar="SECONDS")


def _options(args: argparse.Namespace) -> WebRTCOptions:
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
        ice_servers=tuple(servers),
        ice_transport_policy="relay" if args.relay_only else "all",
        host_candidates=hosts,
        connect_timeout=args.connect_timeout,
    )


def _required(value: str | None, flag: str, env: str) -> str:
    if not value:
        raise SystemExit(f"mcp-webrtc: {flag} is required (or set {env})")
    return value


def load_app(spec: str) -> Any:
    """Import ``module:attribute`` (like uvicorn's app spec)."""
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise SystemExit(f"mcp-webrtc: --app wants module:attribute, got {spec!r}")
    sys.path.insert(0, os.getcwd())
    module = importlib.import_module(module_name)
    obj: Any = module
    for part in attribute.split("."):
        obj = getattr(obj, part)
    return obj


# ------------------------------------------------------------------------ commands


async def cmd_signal(args: argparse.Namespace) -> None:
    from .rendezvous import RendezvousConfig, RendezvousServer

    tokens = list(args.host_token or [])
    if args.token_file:
        text = await anyio.Path(args.token_file).read_text()
        tokens += [
            line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")
        ]
    try:
        config = RendezvousConfig(
            host=args.host,
            port=args.port,
            host_tokens=tuple(tokens),
            max_message_size=args.max_message_size,
            max_rooms=args.max_rooms,
            max_sessions_per_room=args.max_sessions,
            rate=args.rate,
            burst=args.burst,
            allowed_origins=tuple(args.allow_origin or ()),
            tls_cert=args.tls_cert,
            tls_key=args.tls_key,
            stun_urls=tuple(args.stun_url or ()),
            turn_urls=tuple(args.turn_url or ()),
            turn_secret=args.turn_secret,
            turn_ttl=args.turn_ttl,
            turn_username=args.turn_user,
            turn_password=args.turn_pass,
        )
    except ValueError as exc:  # e.g. a certificate without its key
        raise SystemExit(f"mcp-webrtc signal: {exc}") from None
    async with RendezvousServer(config) as server:
        print(f"rendezvous listening at {server.url}", file=sys.stderr, flush=True)
        await server.serve_forever()


async def cmd_serve(args: argparse.Namespace) -> None:
    from .serve import serve, stdio_command_handler

    room = _required(args.room, "--room", "MCP_WEBRTC_ROOM")
    token = _required(args.token, "--token", "MCP_WEBRTC_TOKEN")
    client_token = _required(args.client_token, "--client-token", "MCP_WEBRTC_CLIENT_TOKEN")
    if args.app and args.command:
        raise SystemExit("mcp-webrtc: give either --app or a command after --, not both")
    if args.app:
        target: Any = load_app(args.app)
    elif args.command:
        target = stdio_command_handler(args.command[0], args.command[1:])
    else:
        raise SystemExit("mcp-webrtc: give --app module:attr or -- COMMAND [ARGS...]")
    await serve(
        target,
        args.url,
        room=room,
        token=token,
        client_token=client_token,
        options=_options(args),
        max_sessions=args.max_sessions,
    )


async def cmd_connect(args: argparse.Namespace) -> None:
    from mcp.server.stdio import stdio_server

    from .serve import bridge, connect

    room = _required(args.room, "--room", "MCP_WEBRTC_ROOM")
    token = _required(args.token, "--token", "MCP_WEBRTC_CLIENT_TOKEN or MCP_WEBRTC_TOKEN")
    transport = connect(args.url, room=room, token=token, options=_options(args))
    async with transport as remote:
        info = transport.connection_info()
        logger.info(
            "connected: %s %s <-> %s %s",
            info.local_candidate_type,
            info.local_address,
            info.remote_candidate_type,
            info.remote_address,
        )
        async with stdio_server() as local:
            await bridge(local, remote)


async def cmd_demo(args: argparse.Namespace) -> None:
    from .demo import run_demo

    await run_demo()


# ------------------------------------------------------------------------ parser


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

    sig = commands.add_parser(
        "signal",
        help="run the rendezvous (signaling) server",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="example:\n  mcp-webrtc signal --port 8765 --host-token T",
    )
    sig.add_argument("--host", default="127.0.0.1", help="address to listen on")
    sig.add_argument("--port", type=int, default=8765)
    sig.add_argument(
        "--host-token",
        action="append",
        metavar="TOKEN",
        help="token allowed to register rooms (repeatable)",
    )
    sig.add_argument("--token-file", help="file with one host token per line")
    sig.add_argument("--tls-cert", help="PEM certificate (serve wss://)")
    sig.add_argument("--tls-key", help="PEM private key")
    sig.add_argument("--stun-url", action="append", metavar="URL", help="STUN URL for peers")
    sig.add_argument("--turn-url", action="append", metavar="URL", help="TURN URL for peers")
    sig.add_argument("--turn-secret", help="coturn static-auth-secret: time-limited credentials")
    sig.add_argument("--turn-ttl", type=float, default=3600.0, help="credential lifetime (s)")
    sig.add_argument("--turn-user", help="static TURN username (without --turn-secret)")
    sig.add_argument("--turn-pass", help="static TURN password")
    sig.add_argument(
        "--allow-origin",
        action="append",
        metavar="ORIGIN",
        help="browser origin allowed to connect (repeatable)",
    )
    sig.add_argument("--max-rooms", type=int, default=1000)
    sig.add_argument("--max-sessions", type=int, default=1000, help="sessions per room")
    sig.add_argument("--max-message-size", type=int, default=64 * 1024)
    sig.add_argument("--rate", type=float, default=50.0, help="messages/s per connection")
    sig.add_argument("--burst", type=float, default=200.0)
    sig.set_defaults(run=cmd_signal)

    srv = commands.add_parser(
        "serve",
        help="expose an MCP server (stdio command or Python object) to WebRTC peers",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Everything after -- is the stdio MCP server to run, one process per peer.\n\n"
        "examples:\n  mcp-webrtc serve URL --room R --token T --client-token C -- "
        "python my_server.py\n  mcp-webrtc serve URL --room R --token T --client-token C "
        "--app pkg.module:mcp",
    )
    srv.add_argument("url", help="rendezvous URL, ws://host:port/ or wss://...")
    srv.add_argument("--room", default=os.environ.get("MCP_WEBRTC_ROOM"))
    srv.add_argument("--token", default=os.environ.get("MCP_WEBRTC_TOKEN"), help="host token")
    srv.add_argument(
        "--client-token",
        default=os.environ.get("MCP_WEBRTC_CLIENT_TOKEN"),
        help="token clients must present to join the room",
    )
    srv.add_argument("--app", help="module:attribute of an MCPServer/FastMCP/Server object")
    srv.add_argument("--max-sessions", type=int, default=100)
    _add_ice_flags(srv)
    srv.set_defaults(run=cmd_serve, command=[])

    con = commands.add_parser(
        "connect",
        help="stdio proxy to a remote WebRTC MCP server (for any stdio MCP client)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="example:\n  mcp-webrtc connect ws://rdv:8765/ --room laptop --token C",
    )
    con.add_argument("url", help="rendezvous URL")
    con.add_argument("--room", default=os.environ.get("MCP_WEBRTC_ROOM"))
    con.add_argument(
        "--token",
        default=os.environ.get("MCP_WEBRTC_CLIENT_TOKEN") or os.environ.get("MCP_WEBRTC_TOKEN"),
        help="the room's client token",
    )
    _add_ice_flags(con)
    con.set_defaults(run=cmd_connect)

    demo = commands.add_parser("demo", help="rendezvous, server and client in one process")
    demo.set_defaults(run=cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    words = list(sys.argv[1:] if argv is None else argv)
    command: list[str] = []
    if "--" in words:  # `serve ... -- COMMAND ARGS`: the command is not ours to parse
        split = words.index("--")
        words, command = words[:split], words[split + 1 :]
    args = build_parser().parse_args(words)
    if command:
        if args.name != "serve":
            raise SystemExit("mcp-webrtc: only serve takes a command after --")
        args.command = command
    base = logging.INFO if args.name in ("signal", "serve") else logging.WARNING
    level = base - 10 * args.verbose
    logging.basicConfig(
        level=max(level, logging.DEBUG),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if args.verbose < 2:
        logging.getLogger("aioice").setLevel(logging.WARNING)
    backend_options: dict[str, Any] = {}
    try:
        import uvloop  # noqa: F401

        backend_options["use_uvloop"] = True
    except ImportError:
        pass
    started = time.monotonic()
    try:
        anyio.run(args.run, args, backend_options=backend_options)
    except KeyboardInterrupt:
        return 130
    except MCPWebRTCError as exc:
        print(f"mcp-webrtc: {exc}", file=sys.stderr)
        return 1
    except BaseExceptionGroup as group:  # raised from inside a task group (a bridge)
        ours, rest = group.split(MCPWebRTCError)
        if ours is None or rest is not None:
            raise
        for error in ours.exceptions:
            print(f"mcp-webrtc: {error}", file=sys.stderr)
        return 1
    logger.debug("done in %.1f s", time.monotonic() - started)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
