"""Compare MCP over WebRTC with stdio, Streamable HTTP and in-memory, in one run.

The server runs in its own process for stdio, HTTP and WebRTC (in-memory is in-process by
definition). Run inside the isolated namespace: ``make bench``, or
``scripts/netns-run .venv/bin/python benchmarks/compare.py [--quick] [--uvloop]``.

Prints, per transport: connect + initialize time; echo-tool median and p99 latency over
300 calls of 100 bytes; time for one 1 MiB and one 10 MiB result, as JSON text and as a
base64 blob; then the ratios WebRTC/stdio and WebRTC/HTTP, and the raw data-channel
throughput between two processes.
"""

from __future__ import annotations

import argparse
import logging
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client

from mcp_webrtc import LOOPBACK_ONLY, WebRTCClientTransport, WebRTCOptions

HERE = Path(__file__).resolve().parent
SERVER = str(HERE / "bench_server.py")
MiB = 1024 * 1024


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@asynccontextmanager
async def process(*args: str) -> AsyncIterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen([sys.executable, SERVER, *args])
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


async def wait_for_port(port: int) -> None:
    with anyio.fail_after(20):
        while True:
            try:
                stream = await anyio.connect_tcp("127.0.0.1", port)
            except OSError:
                await anyio.sleep(0.05)
                continue
            await stream.aclose()
            return


Factory = Callable[[], AbstractAsyncContextManager[Any]]


@asynccontextmanager
async def stdio_target(uvloop: bool) -> AsyncIterator[Factory]:
    params = StdioServerParameters(command=sys.executable, args=[SERVER, "stdio"])
    yield lambda: Client(stdio_client(params))


@asynccontextmanager
async def http_target(uvloop: bool) -> AsyncIterator[Factory]:
    port = free_port()
    async with process("http", str(port)):
        await wait_for_port(port)
        url = f"http://127.0.0.1:{port}/mcp"
        yield lambda: Client(streamable_http_client(url, max_sse_event_size=None))


@asynccontextmanager
async def webrtc_target(uvloop: bool) -> AsyncIterator[Factory]:
    from aiortc.contrib.signaling import TcpSocketSignaling

    port = free_port()
    async with process("webrtc", str(port), *(["--uvloop"] if uvloop else [])):
        options = WebRTCOptions(host_candidates=LOOPBACK_ONLY)

        @asynccontextmanager
        async def connect() -> AsyncIterator[Any]:
            await wait_listening(port)  # the next session's offer is ready
            signaling = TcpSocketSignaling("127.0.0.1", port)
            async with Client(WebRTCClientTransport(signaling, options)) as client:
                yield client

        yield connect


async def wait_listening(port: int) -> None:
    """Wait until a TCP socket listens on ``port``, without connecting to it."""
    needle = f":{port:04X} 00000000:0000 0A"
    with anyio.fail_after(30):
        while needle not in Path("/proc/net/tcp").read_text():
            await anyio.sleep(0.01)


@asynccontextmanager
async def memory_target(uvloop: bool) -> AsyncIterator[Factory]:
    sys.path.insert(0, str(HERE))
    from bench_server import server

    yield lambda: Client(server)


TARGETS = {
    "stdio": stdio_target,
    "http": http_target,
    "webrtc": webrtc_target,
    "memory": memory_target,
}


async def measure(
    factory: Factory, calls: int, sizes: list[int], connects: int
) -> dict[str, float]:
    out: dict[str, float] = {}
    connect_times = []
    for _ in range(connects):
        started = time.perf_counter()
        async with factory() as client:
            connect_times.append(time.perf_counter() - started)
    out["connect+init ms"] = statistics.median(connect_times) * 1000
    async with factory() as client:
        text = "x" * 100
        for _ in range(20):  # warm up
            await client.call_tool("echo", {"text": text})
        latencies = []
        for _ in range(calls):
            started = time.perf_counter()
            await client.call_tool("echo", {"text": text})
            latencies.append(time.perf_counter() - started)
        latencies.sort()
        out["echo median ms"] = statistics.median(latencies) * 1000
        out["echo p99 ms"] = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000
        for size in sizes:
            label = f"{size // MiB} MiB"
            started = time.perf_counter()
            result = await client.call_tool("text_blob", {"size": size})
            out[f"{label} text ms"] = (time.perf_counter() - started) * 1000
            assert len(result.content[0].text) == size
            started = time.perf_counter()
            result = await client.call_tool("binary_blob", {"size": size})
            out[f"{label} base64 ms"] = (time.perf_counter() - started) * 1000
            assert result.content[0].type == "image"
    return out


async def raw_throughput(total: int, uvloop: bool, bare: bool) -> float:
    """MB/s of 1 MiB messages between two processes (``bare``: 64 KiB whole messages, no
    chunking, the aiortc ceiling)."""
    from raw_peer import receive

    port = free_port()
    flags = (["--uvloop"] if uvloop else []) + (["--bare"] if bare else [])
    proc = subprocess.Popen(
        [sys.executable, str(HERE / "raw_peer.py"), "send", str(port), str(total), *flags]
    )
    try:
        return await receive(port, total)
    finally:
        proc.wait(timeout=60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer calls, 1 MiB only")
    parser.add_argument("--uvloop", action="store_true", help="run the WebRTC peers on uvloop")
    parser.add_argument("--only", nargs="*", choices=list(TARGETS), default=list(TARGETS))
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("aioice").setLevel(logging.WARNING)
    calls = 60 if args.quick else 300
    sizes = [MiB] if args.quick else [MiB, 10 * MiB]
    sys.path.insert(0, str(HERE))

    async def run() -> tuple[dict[str, dict[str, float]], tuple[float, float]]:
        results: dict[str, dict[str, float]] = {}
        for name in args.only:
            async with TARGETS[name](args.uvloop) as factory:
                results[name] = await measure(factory, calls, sizes, connects=3)
            print(f"  measured {name}", file=sys.stderr, flush=True)
        total = 16 * MiB if args.quick else 64 * MiB
        mbps = await raw_throughput(total, args.uvloop, bare=False)
        bare = await raw_throughput(total, args.uvloop, bare=True)
        return results, (mbps, bare)

    backend_options = {"use_uvloop": True} if args.uvloop else {}
    results, mbps = anyio.run(run, backend_options=backend_options)
    report(results, mbps, args)


def report(
    results: dict[str, dict[str, float]], raw: tuple[float, float], args: argparse.Namespace
) -> None:
    names = list(results)
    metrics = list(next(iter(results.values())))
    width = max(len(m) for m in metrics) + 2
    loop = "uvloop" if args.uvloop else "asyncio"
    print(f"\nMCP transports, server in its own process (memory: in-process); event loop: {loop}")
    header = "metric".ljust(width) + "".join(n.rjust(10) for n in names)
    ratio_cols = [
        (a, b)
        for a, b in (("webrtc", "stdio"), ("webrtc", "http"))
        if a in results and b in results
    ]
    header += "".join(f"{a}/{b}".rjust(14) for a, b in ratio_cols)
    print(header)
    print("-" * len(header))
    for metric in metrics:
        row = metric.ljust(width) + "".join(f"{results[n][metric]:10.2f}" for n in names)
        row += "".join(f"{results[a][metric] / results[b][metric]:13.2f}x" for a, b in ratio_cols)
        print(row)
    mbps, bare = raw
    print(f"\nraw data channel between two processes ({loop}, incompressible, no MCP):")
    print(f"  mcp-webrtc framing, 1 MiB messages in 64 KiB chunks: {mbps:6.1f} MB/s")
    print(f"  aiortc alone, 64 KiB messages:                        {bare:6.1f} MB/s")


if __name__ == "__main__":
    main()
