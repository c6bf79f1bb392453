"""A `serve` host's resident memory over rounds of large results, and after peers leave.

Run inside the isolated namespace:
``scripts/netns-run .venv/bin/python benchmarks/host_memory.py [--rounds 6] [--size-mib 8]``.

One ``mcp-webrtc serve --app`` host in its own process; each round, five clients join at
once, each fetches one result of ``--size-mib`` MiB (incompressible), and leaves. Prints
the host's RSS after each round and once every peer has left (``/proc/PID/status``).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import anyio
from mcp import ClientSession

from mcp_webrtc import LOOPBACK_ONLY, WebRTCOptions
from mcp_webrtc.rendezvous import RendezvousConfig, RendezvousServer
from mcp_webrtc.serve import connect

ROOT = Path(__file__).resolve().parent.parent
HOST_TOKEN, CLIENT_TOKEN = "mem-host", "mem-client"
OPTIONS = WebRTCOptions(host_candidates=LOOPBACK_ONLY, connect_timeout=60)
MiB = 1024 * 1024
#: Extra environment for the host, e.g. HOST_ENV="MALLOC_ARENA_MAX=2" to try allocator knobs.
EXTRA_ENV = dict(item.split("=", 1) for item in os.environ.get("HOST_ENV", "").split() if item)


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


async def one_client(url: str, size: int) -> None:
    async with (
        connect(url, room="mem", token=CLIENT_TOKEN, options=OPTIONS) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        result = await session.call_tool("blob", {"size": size, "seed": 3})
        text = getattr(result.content[0], "text", "")
        assert len(text) == size, len(text)


async def main(rounds: int, size: int, peers: int) -> None:
    config = RendezvousConfig(port=0, host_tokens=(HOST_TOKEN,))
    async with RendezvousServer(config) as server:
        host = subprocess.Popen(
            [
                *(sys.executable, "-m", "mcp_webrtc", "serve", server.url, "--room", "mem"),
                *("--token", HOST_TOKEN, "--client-token", CLIENT_TOKEN),
                *("--host-candidates", "loopback", "--app", "tests.app:SERVER"),
            ],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT), **EXTRA_ENV},
            stderr=subprocess.DEVNULL,
        )
        try:
            with anyio.fail_after(60):
                while (await server.backend.counts())[0] == 0:
                    await anyio.sleep(0.05)
            print(f"host RSS at start: {rss_mib(host.pid):7.1f} MiB")
            for index in range(rounds):
                async with anyio.create_task_group() as tg:
                    for _ in range(peers):
                        tg.start_soon(one_client, server.url, size)
                print(f"after round {index + 1}: {rss_mib(host.pid):7.1f} MiB")
            with anyio.fail_after(60):
                while (await server.backend.counts())[1] > 0:
                    await anyio.sleep(0.05)
            await anyio.sleep(2)  # sessions close asynchronously after their peers left
            print(f"every peer gone:  {rss_mib(host.pid):7.1f} MiB")
        finally:
            host.terminate()
            host.wait(10)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--size-mib", type=float, default=8)
    parser.add_argument("--peers", type=int, default=5)
    args = parser.parse_args()
    anyio.run(main, args.rounds, int(args.size_mib * MiB), args.peers)
