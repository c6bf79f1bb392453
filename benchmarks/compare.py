"""Compare MCP over WebRTC (each engine) with stdio, Streamable HTTP and in-memory, in one run.

The server runs in its own process for stdio, HTTP and WebRTC (in-memory is in-process by
definition). Run inside the isolated namespace: ``make bench``, or
``scripts/netns-run .venv/bin/python benchmarks/compare.py [--quick] [--uvloop]``.

Prints, per transport: connect + initialize time; echo-tool median and p99 latency over
300 calls of 100 bytes; time for a 1 MiB and a 10 MiB result (median of three calls), as
JSON text and as a base64 blob; the ratios of each WebRTC engine to stdio and to HTTP; the
raw data-channel throughput between two processes per engine; and the bridged paths (an MCP
client through ``mcp-webrtc connect`` -> WebRTC -> ``mcp-webrtc serve`` -> a stdio server;
an HTTP client through ``connect --listen`` -> WebRTC -> ``serve --url`` -> an HTTP
server) against the same client on that server directly.
"""

from __future__ import annotations

import argparse
import logging
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client

from mcp_webrtc import LOOPBACK_ONLY, SignalingError, WebRTCClientTransport, WebRTCOptions
from mcp_webrtc.engines import ENGINES, libwebrtc_available

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
async def webrtc_target(uvloop: bool, engine: str) -> AsyncIterator[Factory]:
    from aiortc.contrib.signaling import TcpSocketSignaling

    port = free_port()
    async with process("webrtc", str(port), engine, *(["--uvloop"] if uvloop else [])):
        options = WebRTCOptions(host_candidates=LOOPBACK_ONLY, engine=engine)  # type: ignore[arg-type]

        @asynccontextmanager
        async def connect() -> AsyncIterator[Any]:
            for attempt in range(5):
                await wait_listening(port)  # the next session's offer is ready
                signaling = TcpSocketSignaling("127.0.0.1", port)
                try:
                    client = await Client(WebRTCClientTransport(signaling, options)).__aenter__()
                except SignalingError:  # reached the previous session's socket as it closed
                    if attempt == 4:
                        raise
                    await anyio.sleep(0.1)
                    continue
                try:
                    yield client
                finally:
                    await client.__aexit__(None, None, None)
                return

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


def engine_target(engine: str) -> Callable[[bool], AbstractAsyncContextManager[Factory]]:
    return lambda uvloop: webrtc_target(uvloop, engine)


INSTALLED = [e for e in ENGINES if e == "aiortc" or libwebrtc_available()]
TARGETS: dict[str, Callable[[bool], AbstractAsyncContextManager[Factory]]] = {
    "stdio": stdio_target,
    "http": http_target,
    **{engine: engine_target(engine) for engine in INSTALLED},
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
            for kind, tool in (("text", "text_blob"), ("base64", "binary_blob")):
                times = []
                for _ in range(3):  # the median of three: one call is at the mercy of the GC
                    started = time.perf_counter()
                    result = await client.call_tool(tool, {"size": size})
                    times.append(time.perf_counter() - started)
                out[f"{label} {kind} ms"] = statistics.median(times) * 1000
                if kind == "text":
                    assert len(result.content[0].text) == size
                else:
                    assert result.content[0].type == "image"
    return out


async def raw_throughput(total: int, uvloop: bool, bare: bool, engine: str) -> float:
    """MB/s of 1 MiB messages between two processes (``bare``: 64 KiB whole messages, no
    chunking: the engine's own ceiling)."""
    from raw_peer import receive

    port = free_port()
    flags = (["--uvloop"] if uvloop else []) + (["--bare"] if bare else [])
    script = str(HERE / "raw_peer.py")
    proc = subprocess.Popen([sys.executable, script, "send", str(port), str(total), engine, *flags])
    try:
        return await receive(port, total, engine)
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

    async def run() -> tuple[Results, Raw, Results, Results]:
        results: dict[str, dict[str, float]] = {}
        for name in args.only:
            async with TARGETS[name](args.uvloop) as factory:
                results[name] = await measure(factory, calls, sizes, connects=3)
            print(f"  measured {name}", file=sys.stderr, flush=True)
        total = 16 * MiB if args.quick else 64 * MiB
        raw: Raw = {}
        for engine in INSTALLED:
            framed = await raw_throughput(total, args.uvloop, bare=False, engine=engine)
            bare = await raw_throughput(total, args.uvloop, bare=True, engine=engine)
            raw[engine] = (framed, bare)
        from bridged import measure_bridged, measure_http_bridged

        bridged = await measure_bridged(INSTALLED, calls, args.uvloop)
        bridged_http = await measure_http_bridged(INSTALLED, calls)
        return results, raw, bridged, bridged_http

    backend_options = {"use_uvloop": True} if args.uvloop else {}
    results, raw, bridged, bridged_http = anyio.run(run, backend_options=backend_options)
    report(results, raw, bridged, bridged_http, args)


Raw = dict[str, tuple[float, float]]
Results = dict[str, dict[str, float]]


def table(results: dict[str, dict[str, float]], ratios: Sequence[tuple[str, str]]) -> None:
    names = list(results)
    metrics = list(next(iter(results.values())))
    width = max(len(m) for m in metrics) + 2
    header = "metric".ljust(width) + "".join(n.rjust(11) for n in names)
    header += "".join(f"{a}/{b}".rjust(17) for a, b in ratios)
    print(header)
    print("-" * len(header))
    for metric in metrics:
        row = metric.ljust(width) + "".join(f"{results[n][metric]:11.2f}" for n in names)
        row += "".join(f"{results[a][metric] / results[b][metric]:16.2f}x" for a, b in ratios)
        print(row)


def report(
    results: dict[str, dict[str, float]],
    raw: Raw,
    bridged: Results,
    bridged_http: Results,
    args: argparse.Namespace,
) -> None:
    loop = "uvloop" if args.uvloop else "asyncio"
    print(f"\nMCP transports, server in its own process (memory: in-process); event loop: {loop}")
    ratios = [
        (engine, base) for engine in INSTALLED for base in ("stdio", "http")
        if engine in results and base in results
    ]  # fmt: skip
    table(results, ratios)
    print(f"\nraw data channel between two processes ({loop}, incompressible, no MCP):")
    for engine, (framed, bare) in raw.items():
        print(f"  {engine:<10} mcp-webrtc framing, 1 MiB messages: {framed:6.1f} MB/s;"
              f"  the engine alone, 64 KiB messages: {bare:6.1f} MB/s")  # fmt: skip
    if len(raw) == 2:
        ratio = raw["libwebrtc"][0] / raw["aiortc"][0]
        print(f"  libwebrtc / aiortc (framed): {ratio:.1f}x")
    print("\nbridged: an MCP client through connect -> WebRTC -> serve -> a stdio server,")
    print("against the same client on the stdio server directly (ms)")
    table(bridged, [(e, "direct") for e in INSTALLED if e in bridged])
    print("\nbridged over HTTP: an HTTP MCP client through connect --listen -> WebRTC ->")
    print("serve --url -> a Streamable HTTP server, against the same client on it directly (ms)")
    table(bridged_http, [(e, "direct") for e in INSTALLED if e in bridged_http])


if __name__ == "__main__":
    main()
