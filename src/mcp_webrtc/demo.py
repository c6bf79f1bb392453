"""``mcp-webrtc demo``: the whole path in one process, step by step.

An embedded rendezvous on 127.0.0.1 (a free port), an MCP server registered there through
:func:`~mcp_webrtc.serve.serve`, and a client that joins through the rendezvous and talks
MCP over the WebRTC data channel. Host candidates are restricted to loopback: nothing
leaves the machine and no STUN/TURN server is contacted.
"""

from __future__ import annotations

import base64
import hashlib
import importlib
import secrets
import time
from typing import Any

import anyio
import mcp

from .options import LOOPBACK_ONLY, WebRTCOptions
from .rendezvous import RendezvousConfig, RendezvousServer
from .serve import connect, serve


def demo_server() -> Any:
    """A small MCP server: greet, add, and a 5 MiB binary resource-like tool."""
    if hasattr(mcp, "Client"):  # mcp 2.x
        server: Any = importlib.import_module("mcp.server.mcpserver").MCPServer("mcp-webrtc demo")
    else:  # pragma: no cover - mcp 1.x
        server = importlib.import_module("mcp.server.fastmcp").FastMCP("mcp-webrtc demo")

    def greet(name: str) -> str:
        """Say hello."""
        return f"Hello, {name}!"

    def add(a: int, b: int) -> int:
        """Add two integers."""
        return a + b

    def blob(size: int) -> str:
        """``size`` pseudo-random bytes, base64-encoded (large results are chunked)."""
        return base64.b64encode(secrets.token_bytes(size)).decode()

    server.add_tool(greet)
    server.add_tool(add)
    server.add_tool(blob, structured_output=False)
    return server


async def run_demo(print_fn: Any = print) -> None:
    started = time.perf_counter()

    def step(text: str) -> None:
        print_fn(f"[{(time.perf_counter() - started) * 1000:8.1f} ms] {text}", flush=True)

    host_token, client_token = secrets.token_urlsafe(18), secrets.token_urlsafe(18)
    options = WebRTCOptions(host_candidates=LOOPBACK_ONLY, connect_timeout=10.0)
    config = RendezvousConfig(host="127.0.0.1", port=0, host_tokens=(host_token,))
    async with RendezvousServer(config) as rendezvous, anyio.create_task_group() as tg:
        step(f"rendezvous listening at {rendezvous.url}")
        await tg.start(
            lambda task_status: serve(
                demo_server(),
                rendezvous.url,
                room="demo",
                token=host_token,
                client_token=client_token,
                options=options,
                task_status=task_status,
            )
        )
        step("MCP server registered room 'demo'")
        transport = connect(rendezvous.url, room="demo", token=client_token, options=options)
        async with transport as (read, write):
            info = transport.connection_info()
            step(
                f"peer connected: {info.local_candidate_type} {info.local_address[0]}:"
                f"{info.local_address[1]} <-> {info.remote_candidate_type} "
                f"{info.remote_address[0]}:{info.remote_address[1]} over {info.protocol}"
                if info.local_address and info.remote_address
                else "peer connected"
            )
            async with mcp.ClientSession(read, write) as session:
                init = await session.initialize()
                info_attr = "server_info" if hasattr(init, "server_info") else "serverInfo"
                server_info = getattr(init, info_attr)
                step(f"initialized: server {server_info.name!r}")
                tools = await session.list_tools()
                step(f"tools listed: {', '.join(tool.name for tool in tools.tools)}")
                result: Any = await session.call_tool("greet", {"name": "WebRTC"})
                step(f"call greet(name='WebRTC') -> {result.content[0].text!r}")
                result = await session.call_tool("add", {"a": 2, "b": 3})
                step(f"call add(a=2, b=3) -> {result.content[0].text}")
                before = time.perf_counter()
                result = await session.call_tool("blob", {"size": 4 * 1024 * 1024})
                data = base64.b64decode(result.content[0].text)
                step(
                    f"call blob(4 MiB) -> {len(data)} bytes (sha256 "
                    f"{hashlib.sha256(data).hexdigest()[:12]}...) in "
                    f"{(time.perf_counter() - before) * 1000:.0f} ms"
                )
            info = transport.connection_info()
            rtt = f"{info.rtt * 1000:.2f} ms" if info.rtt is not None else "not measured yet"
            step(f"bytes sent {info.bytes_sent}, received {info.bytes_received}; ICE RTT {rtt}")
        tg.cancel_scope.cancel()
    step("done: client left, server stopped, rendezvous closed")
