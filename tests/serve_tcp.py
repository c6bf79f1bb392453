"""A WebRTC MCP server in its own process, signaling over aiortc's TcpSocketSignaling.

Usage: python -m tests.serve_tcp PORT [DEAD_PEER_TIMEOUT]
"""

from __future__ import annotations

import sys

import anyio
from aiortc.contrib.signaling import TcpSocketSignaling

from mcp_webrtc import run_server, webrtc_server_transport

from .support import make_server, options


async def main(port: int, dead_peer_timeout: float) -> None:
    signaling = TcpSocketSignaling("127.0.0.1", port)  # passed straight in
    transport = webrtc_server_transport(signaling, options(dead_peer_timeout=dead_peer_timeout))
    await run_server(make_server("process"), transport)


if __name__ == "__main__":
    anyio.run(main, int(sys.argv[1]), float(sys.argv[2]) if len(sys.argv) > 2 else 3.0)
