"""Connecting through the rendezvous, and one `serve` host holding many peers.

Run inside the isolated namespace: ``make bench-load``, or
``scripts/netns-run .venv/bin/python benchmarks/rendezvous_load.py [--peers 50 100 200]``.

0. A join (WebSocket open + join + joined) with the in-memory backend and with Redis (a
   redis-server started here; host on one instance, client on another), 300 times each.
1. connect + initialize + list_tools through the rendezvous, 20 times: median and p90.
2. For each ``--workers`` count W and peer count N: N clients join one ``mcp-webrtc
   serve --app --workers W`` (its own processes), then each calls the echo tool 5 times a
   second for ``--seconds``; prints the
   latency p50/p99, the host's resident memory per peer, and the CPU the host and the
   clients used. All clients share this one process, so on a small machine their own CPU
   shows up in the latency too; like the ``mcp-webrtc`` command, this process freezes
   its startup heap and collects young objects less often, so that its full collections
   stay short and rare. The first second of calls (each session's first call also lists
   the tools, to learn their output schemas) is a warm-up, not measured.

Both steps run once per installed engine (host and clients on the same engine).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import logging
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
from mcp import ClientSession
from websockets.asyncio.client import connect as ws_connect

from mcp_webrtc import LOOPBACK_ONLY, WebRTCOptions
from mcp_webrtc.engines import libwebrtc_available
from mcp_webrtc.rendezvous import RendezvousConfig, RendezvousServer
from mcp_webrtc.serve import connect

ROOT = Path(__file__).resolve().parent.parent
HOST_TOKEN, CLIENT_TOKEN = "bench-host", "bench-client"
WARM_UP = 1.0  # seconds of calls before the measured window


def options(engine: str) -> WebRTCOptions:
    return WebRTCOptions(host_candidates=LOOPBACK_ONLY, connect_timeout=60, engine=engine)  # type: ignore[arg-type]


def family(pid: int) -> list[int]:
    """``pid`` and its descendants (a ``serve --workers`` supervisor and its workers)."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        with contextlib.suppress(OSError):
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
            todo.extend(int(child) for child in children)
    return found


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (``/proc/PID/stat``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


async def wait_registered(server: RendezvousServer, hosts: int) -> None:
    with anyio.fail_after(60):
        while (await server.backend.counts()).hosts < hosts:
            await anyio.sleep(0.05)


async def connect_times(url: str, count: int, engine: str) -> list[float]:
    times = []
    for _ in range(count):
        started = time.perf_counter()
        async with (
            connect(url, room="bench", token=CLIENT_TOKEN, options=options(engine)) as (r, w),
            ClientSession(r, w) as session,
        ):
            await session.initialize()
            await session.list_tools()
            times.append(time.perf_counter() - started)
    return times


async def load(
    url: str, host_pid: int, workers: int, peers: int, seconds: float, rate: float, engine: str
) -> dict[str, Any]:
    latencies: list[float] = []
    errors = 0
    ready = finished = 0
    all_ready, all_finished = anyio.Event(), anyio.Event()
    measuring, stop = anyio.Event(), anyio.Event()
    base_rss = sum(rss_bytes(p) for p in family(host_pid))

    async def peer(index: int) -> None:
        nonlocal ready, finished, errors
        async with (
            connect(url, room="bench", token=CLIENT_TOKEN, options=options(engine)) as (r, w),
            ClientSession(r, w) as session,
        ):
            await session.initialize()
            ready += 1
            if ready == peers:
                all_ready.set()
            await all_ready.wait()
            period = 1.0 / rate
            next_at = time.perf_counter() + period * (index % 10) / 10
            while not stop.is_set():
                await anyio.sleep(max(0.0, next_at - time.perf_counter()))
                next_at += period
                started, measured = time.perf_counter(), measuring.is_set()
                try:
                    await session.call_tool("echo", {"text": "x" * 100})
                except Exception:
                    errors += 1
                    continue
                if measured:
                    latencies.append(time.perf_counter() - started)
            # Nobody closes before every last call is answered: closing peers cost their
            # process CPU, which would land on the calls still in flight.
            finished += 1
            if finished == peers:
                all_finished.set()
            await all_finished.wait()

    async with anyio.create_task_group() as tg:
        for index in range(peers):
            tg.start_soon(peer, index)
            if index % 10 == 9:
                await anyio.sleep(0.2)  # stagger the joins a little
        with anyio.fail_after(300):
            await all_ready.wait()
        await anyio.sleep(WARM_UP)
        measuring.set()
        hosts = family(host_pid)
        loaded_rss = sum(rss_bytes(p) for p in hosts)
        host_cpu, own_cpu = sum(cpu_seconds(p) for p in hosts), cpu_seconds(os.getpid())
        await anyio.sleep(seconds)
        host_cpu = sum(cpu_seconds(p) for p in hosts) - host_cpu
        own_cpu = cpu_seconds(os.getpid()) - own_cpu
        stop.set()
    return {
        "workers": workers,
        "peers": peers,
        "calls": len(latencies),
        "errors": errors,
        "p50 ms": statistics.median(latencies) * 1000,
        "p99 ms": percentile(latencies, 0.99) * 1000,
        "host RSS MiB": loaded_rss / 2**20,
        "RSS/peer MiB": (loaded_rss - base_rss) / peers / 2**20,
        "host CPU %": host_cpu / seconds * 100,
        "clients CPU %": own_cpu / seconds * 100,
    }


async def one_engine(args: argparse.Namespace, engine: str) -> None:
    config = RendezvousConfig(port=0, host_tokens=(HOST_TOKEN,), rate=1000, burst=1000)
    rows = []
    async with RendezvousServer(config) as server:
        for workers in args.workers:
            host = subprocess.Popen(
                [
                    *(sys.executable, "-m", "mcp_webrtc", "serve", server.url, "--room", "bench"),
                    *("--token", HOST_TOKEN, "--client-token", CLIENT_TOKEN, "--engine", engine),
                    *("--host-candidates", "loopback", "--max-sessions", "1000"),
                    *("--app", "bench_server:server", "--workers", str(workers)),
                ],
                cwd=ROOT / "benchmarks",
                env={**os.environ, "PYTHONPATH": str(ROOT / "benchmarks")},
                stderr=subprocess.DEVNULL,
            )
            try:
                await wait_registered(server, workers)
                if workers == args.workers[0]:
                    times = await connect_times(server.url, 20, engine)
                    print(f"\n== engine {engine}")
                    print("connect + initialize + list_tools through the rendezvous (20 runs):")
                    print(
                        f"  median {statistics.median(times) * 1000:.1f} ms, "
                        f"p90 {percentile(times, 0.9) * 1000:.1f} ms\n"
                    )
                for n in args.peers:
                    row = await load(
                        server.url, host.pid, workers, n, args.seconds, args.rate, engine
                    )
                    rows.append(row)
            finally:
                host.terminate()
                host.wait(timeout=30)
            with anyio.fail_after(30):
                while (await server.backend.counts()).hosts:
                    await anyio.sleep(0.05)
    print(f"serve --workers W, each peer calling echo {args.rate:g}/s for {args.seconds:g} s:")
    header = list(rows[0])
    print("".join(f"{h:>14}" for h in header))
    for row in rows:
        print(
            "".join(
                f"{row[h]:>14.1f}" if isinstance(row[h], float) else f"{row[h]:>14}" for h in header
            )
        )


async def join_times(backend: str, count: int) -> list[float]:
    """Median and p99 of a join: open + join + joined (host on one instance, client on
    another with Redis)."""
    with contextlib.ExitStack() as stack:
        settings: dict[str, Any] = {"port": 0, "host_tokens": (HOST_TOKEN,), "rate": 1e6}
        if backend == "redis":
            redis = stack.enter_context(redis_server())
            settings["redis_url"] = redis
        async with contextlib.AsyncExitStack() as servers:
            a = await servers.enter_async_context(RendezvousServer(RendezvousConfig(**settings)))
            b = a
            if backend == "redis":
                b = await servers.enter_async_context(
                    RendezvousServer(RendezvousConfig(**settings))
                )
            async with ws_connect(a.url) as host:
                register = {"type": "register", "room": "bench", "token": HOST_TOKEN}
                await host.send(json.dumps({**register, "clientToken": CLIENT_TOKEN}))
                await host.recv()
                times = []
                for _ in range(count):
                    started = time.perf_counter()
                    async with ws_connect(b.url) as client:
                        await client.send(
                            json.dumps({"type": "join", "room": "bench", "token": CLIENT_TOKEN})
                        )
                        assert json.loads(await client.recv())["type"] == "joined"
                        times.append(time.perf_counter() - started)
                    await host.recv()  # peer-joined
                    await host.recv()  # peer-left
    return times


@contextlib.contextmanager
def redis_server() -> Iterator[str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with tempfile.TemporaryDirectory() as workdir:
        server = subprocess.Popen(
            [
                *("redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", ""),
                *("--appendonly", "no", "--dir", workdir),
            ],
            stdout=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port)):
                    break
                time.sleep(0.02)
            yield f"redis://127.0.0.1:{port}/0"
        finally:
            server.kill()
            server.wait()


async def joins() -> None:
    print("a join through the rendezvous (open + join + joined, 300 runs):")
    medians = {}
    for backend in ("memory", "redis"):
        times = await join_times(backend, 300)
        medians[backend] = statistics.median(times) * 1000
        print(
            f"  {backend:>7}: median {medians[backend]:.2f} ms, "
            f"p99 {percentile(times, 0.99) * 1000:.2f} ms"
        )
    print(f"  Redis adds {medians['redis'] - medians['memory']:+.2f} ms to the median")


async def main(args: argparse.Namespace) -> None:
    await joins()
    for engine in args.engines:
        await one_engine(args, engine)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--peers", type=int, nargs="+", default=[200, 400])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=5.0, help="calls per second per peer")
    installed = ["aiortc", *(["libwebrtc"] if libwebrtc_available() else [])]
    parser.add_argument("--engines", nargs="+", default=installed, choices=installed)
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("aioice").setLevel(logging.WARNING)
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, *gc.get_threshold()[1:])
    anyio.run(main, parser.parse_args())
