"""The bridged paths, each against the same client on the server directly:

* stdio: an MCP client through ``mcp-webrtc connect`` -> WebRTC -> ``mcp-webrtc serve`` ->
  a stdio server;
* HTTP: an HTTP MCP client through ``mcp-webrtc connect --listen`` -> WebRTC ->
  ``mcp-webrtc serve --url`` -> a Streamable HTTP server (uvicorn).

Used by compare.py; alone: ``scripts/netns-run .venv/bin/python benchmarks/bridged.py``.
The commands run as users run them (their own processes, uvloop when installed).
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client

from mcp_webrtc.rendezvous import RendezvousConfig, RendezvousServer

HERE = Path(__file__).resolve().parent
SERVER = [sys.executable, str(HERE / "bench_server.py"), "stdio"]
HOST, CLIENT = "bench-host", "bench-client"
MiB = 1024 * 1024


def client_of(command: list[str]) -> Any:
    return Client(stdio_client(StdioServerParameters(command=command[0], args=command[1:])))


def http_client_of(url: str) -> Any:
    # without the SDK's 1 MiB bound on one server-sent event, which 5 MiB results exceed
    return Client(streamable_http_client(url, max_sse_event_size=None), mode="legacy")


async def measure(
    command: list[str], calls: int, size: int = 5 * MiB, opener: Callable[[Any], Any] = client_of
) -> dict[str, float]:
    out: dict[str, float] = {}
    started = time.perf_counter()
    async with opener(command) as client:
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
        for kind, tool in (("text", "text_blob"), ("base64", "binary_blob")):
            times = []
            for _ in range(3):  # the median of three: one call is at the mercy of the GC
                started = time.perf_counter()
                await client.call_tool(tool, {"size": size})
                times.append(time.perf_counter() - started)
            out[f"{size // MiB} MiB {kind} ms"] = statistics.median(times) * 1000
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


@asynccontextmanager
async def _running(command: list[str], port: int | None = None) -> AsyncIterator[None]:
    """``command`` running (once it accepts connections on ``port``, when given)."""
    from compare import wait_for_port

    proc = subprocess.Popen(command, stderr=subprocess.DEVNULL)
    try:
        if port is not None:
            await wait_for_port(port)
        yield
    finally:
        proc.terminate()
        proc.wait(timeout=15)


async def measure_http_bridged(engines: list[str], calls: int) -> dict[str, dict[str, float]]:
    """``direct``: an HTTP client on the HTTP server; each engine: the same client through
    ``connect --listen`` -> WebRTC -> ``serve --url`` -> that server. 10 MiB results."""
    from compare import free_port

    port = free_port()
    url = f"http://127.0.0.1:{port}/mcp"
    server = [sys.executable, str(HERE / "bench_server.py"), "http", str(port)]
    results: dict[str, dict[str, float]] = {}
    async with _running(server, port):
        results["direct"] = await measure([url], calls, 10 * MiB, lambda c: http_client_of(c[0]))
        config = RendezvousConfig(port=0, host_tokens=(HOST,))
        async with RendezvousServer(config) as rendezvous:
            for engine in engines:
                common = ["--room", "bench", "--host-candidates", "loopback", "--engine", engine]
                serve = [sys.executable, "-m", "mcp_webrtc", "serve", rendezvous.url, *common]
                serve += ["--token", HOST, "--client-token", CLIENT, "--url", url]
                listen = free_port()
                connect = [sys.executable, "-m", "mcp_webrtc", "connect", rendezvous.url]
                connect += [*common, "--token", CLIENT, "--listen", str(listen)]
                async with _running(serve):
                    with anyio.fail_after(60):
                        while (await rendezvous.backend.counts())[0] == 0:
                            await anyio.sleep(0.05)
                    async with _running(connect, listen):
                        endpoint = [f"http://127.0.0.1:{listen}/mcp"]
                        results[engine] = await measure(
                            endpoint, calls, 10 * MiB, lambda c: http_client_of(c[0])
                        )
                with anyio.fail_after(60):  # the next host must not meet this one's room
                    while (await rendezvous.backend.counts())[0] != 0:
                        await anyio.sleep(0.05)
                print(f"  measured HTTP bridged {engine}", file=sys.stderr, flush=True)
    return results


if __name__ == "__main__":
    from compare import INSTALLED, table

    found = anyio.run(measure_bridged, INSTALLED, 300, False)
    table(found, [(e, "direct") for e in INSTALLED])
    found = anyio.run(measure_http_bridged, INSTALLED, 300)
    table(found, [(e, "direct") for e in INSTALLED])
