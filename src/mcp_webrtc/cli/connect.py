"""``mcp-webrtc connect``: a remote MCP server, reached over WebRTC, as a local stdio MCP
server (:mod:`mcp_webrtc.proxy`) or, with ``--listen``, a local Streamable HTTP endpoint
(:mod:`mcp_webrtc.listen`)."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import ipaddress
import os
import socket
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import TYPE_CHECKING, Any

from .._core.identity import PublicKey
from ..exceptions import ConfigurationError, MCPWebRTCError, PeerIdentityError
from ..identity import KnownServers
from ..proxy import EOF_TIMEOUT
from .flags import add_ice_flags, required, webrtc_options

if TYPE_CHECKING:
    from ..peer import DataChannelPeer


def add_connect(commands: Any) -> None:
    con = commands.add_parser(
        "connect",
        help="stdio proxy to a remote WebRTC MCP server (for any stdio MCP client)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Only JSON-RPC goes to stdout. When the server goes away, pending requests get "
        "an\nerror and connect exits (status 1); on end of stdin it delivers the answers "
        "still\ndue, then exits (status 0). With --listen: HTTP instead of stdio, and each\n"
        "HTTP MCP session is told the same way.\n\n"
        "examples:\n  mcp-webrtc connect ws://rdv:8765/ --room laptop --token-file client.token\n"
        "  mcp-webrtc connect ws://rdv:8765/ --room laptop --token-file client.token "
        "--listen 8931",
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
    listen = con.add_argument_group("for MCP clients that speak only HTTP")
    listen.add_argument(
        "--listen",
        metavar="[HOST:]PORT",
        help="instead of stdio, serve Streamable HTTP at http://HOST:PORT/mcp (HOST "
        "defaults to 127.0.0.1; PORT 0 picks a free one): one WebRTC session per HTTP MCP "
        "session",
    )
    listen.add_argument(
        "--listen-any",
        action="store_true",
        help="allow a --listen address that is not loopback: anyone who can reach it uses "
        "the remote server as you (Host and Origin checks are off)",
    )
    add_ice_flags(con)


async def cmd_connect(args: argparse.Namespace) -> int:
    from ..peer import DataChannelPeer
    from ..websocket_signaling import WebSocketSignaling

    problem: MCPWebRTCError | None = args.problem
    known = KnownServers(args.known_servers)
    try:  # a mistake here is told to the MCP client too, as the answer to its initialize
        room = required(args.room, "--room", "MCP_WEBRTC_ROOM")
        options = webrtc_options(args, args.server_key)
    except MCPWebRTCError as exc:
        problem = problem or exc

    @asynccontextmanager
    async def open_peer() -> AsyncIterator[DataChannelPeer]:
        """A new peer; each one (connect --listen opens one per HTTP session) pins the key
        recorded for the room by then, unless --server-key names the keys."""
        if problem is not None:
            raise problem
        recorded = None if args.server_key else known.lookup(args.url, room)
        pinned = tuple(args.server_key) or ((recorded.line,) if recorded else ())
        session_options = dataclasses.replace(options, expect_peer_keys=pinned)
        signaling = WebSocketSignaling(args.url, room, args.token)
        try:
            initiator = bool(options.initiator)
            async with DataChannelPeer(signaling, session_options, initiator=initiator) as peer:
                line = peer.info().peer_key
                if line and not args.server_key and recorded is None:
                    key = PublicKey.parse(line)
                    known.record(args.url, room, key)
                    status(f"recorded the server's key {key.fingerprint}")
                yield peer
        except PeerIdentityError as exc:
            if recorded is None:
                raise
            raise PeerIdentityError(
                f"{exc.detail}. The server of room {room!r} at {args.url} proved key "
                f"{recorded.fingerprint} before ({known.path}). If it changed its key on "
                f"purpose, run: mcp-webrtc forget-server {args.url} --room {room}"
            ) from None

    def status(text: str) -> None:
        print(f"mcp-webrtc: {text}", file=sys.stderr, flush=True)

    target = f"room {args.room!r} at {args.url}"
    if args.listen is not None:
        return await _listen(args, open_peer, target, status)
    from .._stdio import take_stdio
    from ..proxy import StdioProxy

    stdin, stdout = take_stdio()
    proxy = StdioProxy(
        open_peer,
        stdin=stdin,
        stdout=stdout,
        status=status,
        wait=args.wait,
        eof_timeout=args.eof_timeout,
        target=target,
    )
    return await proxy.run()


def listen_address(value: str, anywhere: bool) -> tuple[str, int, bool]:
    """``[HOST:]PORT`` (``[::1]:PORT`` for IPv6) as a host, a port and whether the host is
    loopback; a host that is not loopback only ``anywhere``."""
    host, _, port = value.rpartition(":")
    host = host.strip("[]") or "127.0.0.1"
    try:
        number = int(port)
        if not 0 <= number <= 65535:
            raise ValueError
    except ValueError:
        raise ConfigurationError(f"--listen wants [HOST:]PORT, got {value!r}") from None
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        raise ConfigurationError(f"--listen wants an IP address or localhost: {host!r}") from None
    if not loopback and not anywhere:
        raise ConfigurationError(
            f"--listen {value} is not a loopback address: anyone who can reach it would use "
            "the remote MCP server as you; add --listen-any to mean it"
        )
    return host, number, loopback


async def _listen(
    args: argparse.Namespace,
    open_peer: Callable[[], AbstractAsyncContextManager[DataChannelPeer]],
    target: str,
    status: Callable[[str], None],
) -> int:
    import uvicorn

    try:
        from mcp.server.transport_security import TransportSecuritySettings

        from ..listen import HttpEndpoint, loopback_security
    except ImportError as exc:  # an mcp older than its Streamable HTTP server transport's
        needs = f"--listen needs a newer mcp (pip install -U mcp): {exc}"
        raise ConfigurationError(needs) from None

    host, port, loopback = listen_address(args.listen, args.listen_any)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(128)  # connections wait from now on, before the line below says so
    except OSError as exc:
        sock.close()
        raise ConfigurationError(f"cannot listen on {args.listen}: {exc.strerror}") from None
    port = sock.getsockname()[1]
    security = (
        loopback_security(port)
        if loopback
        else TransportSecuritySettings(enable_dns_rebinding_protection=False)
    )
    endpoint = HttpEndpoint(
        open_peer, target=target, security=security, wait=args.wait, status=status
    )
    shown = f"[{host}]" if family == socket.AF_INET6 else host
    config = uvicorn.Config(endpoint, lifespan="off", log_config=None, access_log=False)
    async with endpoint.running():
        status(f"listening at http://{shown}:{port}{endpoint.path} for {target}")
        await _Uvicorn(config).serve(sockets=[sock])
    return 0


class _Uvicorn:
    """uvicorn's server, leaving SIGINT and SIGTERM to the command line (which stops every
    session, each saying bye, rather than waiting for open streams)."""

    def __init__(self, config: Any) -> None:
        import uvicorn

        class Server(uvicorn.Server):
            @contextlib.contextmanager
            def capture_signals(self) -> Iterator[None]:
                yield

        self._server = Server(config)

    async def serve(self, sockets: list[socket.socket]) -> None:
        await self._server.serve(sockets=sockets)
