"""How fast a `connect` client learns that its server went away, per way of going.

Run inside the isolated namespace:
``scripts/netns-run .venv/bin/python benchmarks/failure_times.py [--dead-peer-timeout 10]
[--engines aiortc libwebrtc]``.

For each of SIGKILL, SIGSTOP, SIGTERM and SIGINT sent to a ``mcp-webrtc serve`` host, a
``mcp-webrtc connect`` process with one tool call pending at that host: seconds from the
signal to the error answer on connect's stdout, and to connect's exit (and its status);
once per installed engine (both commands on it).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import anyio
from anyio.streams.buffered import BufferedByteReceiveStream

from mcp_webrtc.engines import libwebrtc_available
from mcp_webrtc.rendezvous import RendezvousConfig, RendezvousServer

ROOT = Path(__file__).resolve().parent.parent
HOST, CLIENT = "times-host", "times-client"


def command(*args: str) -> list[str]:
    return [sys.executable, "-m", "mcp_webrtc", *args]


async def one(url: str, how: signal.Signals, dead: str, engine: str) -> tuple[float, float, int]:
    common = ["--room", "lab", "--host-candidates", "loopback", "--dead-peer-timeout", dead]
    common += ["--engine", engine]
    host = subprocess.Popen(
        command(
            *("serve", url, *common, "--token", HOST, "--client-token", CLIENT),
            *("--app", "tests.app:SERVER"),
        ),
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stderr=subprocess.DEVNULL,
    )
    client = await anyio.open_process(
        command("connect", url, *common, "--token", CLIENT, "--wait", "30"),
        stderr=subprocess.DEVNULL,
    )
    stdin, stdout = client.stdin, client.stdout
    assert stdin is not None
    assert stdout is not None
    lines = BufferedByteReceiveStream(stdout)

    async def send(message: dict[str, object]) -> None:
        await stdin.send(json.dumps({"jsonrpc": "2.0", **message}).encode() + b"\n")

    async def answer() -> dict[str, object]:
        result: dict[str, object] = json.loads(await lines.receive_until(b"\n", 1 << 24))
        return result

    try:
        info = {"name": "times", "version": "1"}
        params = {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": info}
        await send({"id": 1, "method": "initialize", "params": params})
        await answer()
        await send({"method": "notifications/initialized"})
        await send(
            {
                "id": 2,
                "method": "tools/call",
                "params": {"name": "wait", "arguments": {"seconds": 600}},
            }
        )
        await send(
            {
                "id": 3,
                "method": "tools/call",
                "params": {"name": "greet", "arguments": {"name": "x"}},
            }
        )
        await answer()  # 3: the server has both calls
        host.send_signal(how)
        sent = time.monotonic()
        await answer()  # 2: the error naming why
        answered = time.monotonic() - sent
        status = await client.wait()
        return answered, time.monotonic() - sent, status
    finally:
        host.kill()
        host.wait()
        if client.returncode is None:
            client.kill()
        await client.wait()


async def main(dead: float, engines: list[str]) -> None:
    config = RendezvousConfig(port=0, host_tokens=(HOST,))
    async with RendezvousServer(config) as server:
        print(f"dead_peer_timeout {dead:g} s; seconds from the signal to serve:")
        print(
            f"{'engine':>10} {'signal':>8} {'error answer':>13} {'connect exit':>13} {'status':>7}"
        )
        for engine in engines:
            for how in (signal.SIGKILL, signal.SIGSTOP, signal.SIGTERM, signal.SIGINT):
                answered, exited, status = await one(server.url, how, f"{dead:g}", engine)
                print(f"{engine:>10} {how.name:>8} {answered:13.2f} {exited:13.2f} {status:>7}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dead-peer-timeout", type=float, default=10.0)
    installed = ["aiortc", *(["libwebrtc"] if libwebrtc_available() else [])]
    parser.add_argument("--engines", nargs="+", default=installed, choices=installed)
    args = parser.parse_args()
    anyio.run(main, args.dead_peer_timeout, args.engines)
