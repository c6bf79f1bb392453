"""The TypeScript seed's README example, in Python: an MCP server and client over WebRTC.

Both peers run in this process and signal through ``MemorySignaling``; the MCP messages
travel over a real WebRTC data channel (ICE, DTLS, SCTP). Run it with ``make demo``.
"""

from __future__ import annotations

import logging
import time

import anyio
from mcp import Client
from mcp.server.mcpserver import MCPServer

from mcp_webrtc import (
    LOOPBACK_ONLY,
    MemorySignaling,
    WebRTCClientTransport,
    WebRTCOptions,
    WebRTCServerTransport,
    run_server,
)

server = MCPServer("greeter")


@server.tool()
def greet(name: str) -> str:
    """Say hello."""
    return f"Hello, {name}!"


async def main() -> None:
    logging.getLogger("aioice").setLevel(logging.WARNING)  # its INFO lines are per ICE check
    started = time.perf_counter()

    def step(text: str) -> None:
        print(f"[{(time.perf_counter() - started) * 1000:7.1f} ms] {text}", flush=True)

    # Loopback only: this demo never leaves the machine. No STUN/TURN server is contacted.
    options = WebRTCOptions(host_candidates=LOOPBACK_ONLY)
    server_signaling, client_signaling = MemorySignaling.create_pair()
    async with anyio.create_task_group() as tg:
        tg.start_soon(run_server, server, WebRTCServerTransport(server_signaling, options))
        transport = WebRTCClientTransport(client_signaling, options)
        async with Client(transport) as client:
            info = transport.connection_info()
            step(
                f"connected and initialized: {info.local_candidate_type} "
                f"{info.local_address} <-> {info.remote_candidate_type} {info.remote_address}"
            )
            tools = await client.list_tools()
            step(f"tools: {[tool.name for tool in tools.tools]}")
            result = await client.call_tool("greet", {"name": "WebRTC"})
            step(f"greet -> {result.content[0].text}")  # type: ignore[union-attr]
        step("client closed; server session ended")


if __name__ == "__main__":
    anyio.run(main)
