"""The bridged path: an MCP client through ``mcp-webrtc connect`` -> WebRTC ->
``mcp-webrtc serve`` -> a stdio server, against the same client on the stdio server.

Used by compare.py; alone: ``scripts/netns-run .venv/bin/python benchmarks/bridged.py``.
The commands run as users run them (their own processes, uvloop when installed).
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client

from mcp_webrtc.rendezvous import RendezvousConfig, RendezvousServer

HERE = Path(__file__).resolve().parent
SERVER = [sys.executable, str(HERE / "bench_server.py"), "stdio"]
HOST, CLIENT = "bench-host", "bench-client"
MiB = 1024 * 1024


def client_of(command: list[str]) -> Any:
    return Client(stdio_client(StdioServerParameters(command=command[0], args=command[1:])))


async def measure(command: list[str], calls: int) -> dict[str, float]:
    out: dict[str, float] = {}
    started = time.perf_counter()
    async with client_of(command) as client:
        out["connect+init ms"] = (time.perf_counter() - started) * 1000
        for _ in range(20):  # warm up
            await client.call_tool("echo", {"text": "x" * 100})
        latencies = []
        for _ in range(calls):
            started = time.perf_counter()
            await client.call_tool("echo", {"text": "x" * 100})
            latencies.append(time.perf_counter() - started)
        latencies.sort()
        out["echo median ms"] = statistics.median(latencies) * 1000
        out["echo p99 ms"] = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000
        for label, tool in (("5 MiB text ms", "text_blob"), ("5 MiB base64 ms", "binary_blob")):
            started = time.perf_counter()
            await client.call_tool(tool, {"size": 5 * MiB})
            out[label] = (time.perf_counter() - started) * 1000
    return out


@asynccontextmanager
async def served(url: str, engine: str) -> AsyncIterator[None]:
    command = [sys.executable, "-m", "mcp_webrtc", "serve", url, "--room", "bench"]
    command += ["--token", HOST, "--client-token", CLIENT, "--host-candidates", "loopback"]
    command += ["--engine", engine, "--", *SERVER]
    proc = subprocess.Popen(command, stderr=subprocess.DEVNULL)
    try:
        yield
    finally:
        proc.terminate()
        proc.wait(timeout=15)


async def measure_bridged(
    engines: list[str], calls: int, uvloop: bool
) -> dict[str, dict[str, float]]:
    results = {"direct": await measure(SERVER, calls)}
    config = RendezvousConfig(port=0, host_tokens=(HOST,))
    async with RendezvousServer(config) as rendezvous:
        for engine in engines:
            async with served(rendezvous.url, engine):
                with anyio.fail_after(60):
                    while (await rendezvous.backend.counts())[0] == 0:
                        await anyio.sleep(0.05)
                connect = [sys.executable, "-m", "mcp_webrtc", "connect", rendezvous.url]
                connect += ["--room", "bench", "--token", CLIENT, "--host-candidates", "loopback"]
                results[engine] = await measure([*connect, "--engine", engine], calls)
            with anyio.fail_after(60):  # the next host must not meet this one's room
                while (await rendezvous.backend.counts())[0] != 0:
                    await anyio.sleep(0.05)
            print(f"  measured bridged {engine}", file=sys.stderr, flush=True)
    return results


if __name__ == "__main__":
    from compare import INSTALLED, table

    found = anyio.run(measure_bridged, INSTALLED, 300, False)
    table(found, [(e, "direct") for e in INSTALLED])
