"""Raw data-channel throughput between two processes (no MCP): one sends, one receives.

``python raw_peer.py send PORT TOTAL ENGINE [--bare] [--uvloop]`` is the sending process;
:func:`receive` the receiving side (compare.py runs both).
"""

from __future__ import annotations

import base64
import random
import sys
import time

import anyio
from aiortc.contrib.signaling import TcpSocketSignaling

from mcp_webrtc import LOOPBACK_ONLY, WebRTCOptions
from mcp_webrtc.peer import open_peer

MiB = 1024 * 1024


def options(engine: str) -> WebRTCOptions:
    # Compression off: this measures the channel itself, with incompressible messages.
    return WebRTCOptions(host_candidates=LOOPBACK_ONLY, compression=False, engine=engine)  # type: ignore[arg-type]


async def send(port: int, total: int, bare: bool, engine: str) -> None:
    message = base64.b64encode(random.Random(0).randbytes(MiB))[:MiB].decode()
    signaling = TcpSocketSignaling("127.0.0.1", port)
    async with open_peer(signaling, options(engine), initiator=True) as peer:
        if bare:  # the engine's data channel alone: 64 KiB binary messages, no framing
            piece = ("{" + message[1 : 64 * 1024]).encode()  # '{': a whole message, no framing
            for _ in range(total // len(piece) + 1):
                while peer.buffered_amount > peer.options.send_high_watermark:
                    await anyio.sleep(0.0005)
                peer.send_frame(piece)
        else:
            for _ in range(total // MiB):
                await peer.send(message)
        await peer.wait_gone()


async def receive(port: int, total: int, engine: str) -> float:
    """Receive ``total`` bytes; returns MB/s (10^6 bytes per second)."""
    signaling = TcpSocketSignaling("127.0.0.1", port)
    async with open_peer(signaling, options(engine), initiator=False) as peer:
        started = time.perf_counter()
        received = 0
        async for message in peer:
            received += len(message)
            if received >= total:
                break
        return received / (time.perf_counter() - started) / 1e6


if __name__ == "__main__":
    loop = {"use_uvloop": True} if "--uvloop" in sys.argv else {}
    anyio.run(
        send,
        int(sys.argv[2]),
        int(sys.argv[3]),
        "--bare" in sys.argv,
        sys.argv[4],
        backend_options=loop,
    )
