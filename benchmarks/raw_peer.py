"""Raw data-channel throughput between two processes (no MCP): one sends, one receives."""

from __future__ import annotations

import sys
import time

import anyio
from aiortc.contrib.signaling import TcpSocketSignaling

from mcp_webrtc import LOOPBACK_ONLY, WebRTCOptions
from mcp_webrtc.peer import open_peer

MiB = 1024 * 1024
OPTIONS = WebRTCOptions(host_candidates=LOOPBACK_ONLY)


async def send(port: int, total: int) -> None:
    message = "x" * MiB
    async with open_peer(TcpSocketSignaling("127.0.0.1", port), OPTIONS, initiator=True) as peer:
        for _ in range(total // MiB):
            await peer.send(message)
        await peer.wait_gone()


async def receive(port: int, total: int) -> float:
    """Receive ``total`` bytes; returns MB/s (10^6 bytes per second)."""
    signaling = TcpSocketSignaling("127.0.0.1", port)
    async with open_peer(signaling, OPTIONS, initiator=False) as peer:
        started = time.perf_counter()
        received = 0
        async for message in peer.incoming:
            received += len(message)
            if received >= total:
                break
        return received / (time.perf_counter() - started) / 1e6


if __name__ == "__main__":
    options = {"use_uvloop": True} if "--uvloop" in sys.argv else {}
    anyio.run(send, int(sys.argv[2]), int(sys.argv[3]), backend_options=options)
