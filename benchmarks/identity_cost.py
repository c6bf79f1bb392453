"""What identity keys cost at connect time (docs/protocol.md §8).

Run inside the isolated namespace:
``scripts/netns-run .venv/bin/python benchmarks/identity_cost.py [--runs 30]``.

For each installed engine: an in-process ``serve`` host registered at a local rendezvous,
and a client that connects, initializes and lists the tools, ``--runs`` times: without
keys, then with both sides signing and each checking the other's key (the client pins the
server's key, the server admits only the client's). Prints the medians and the difference;
also the cost of signing and of checking one description alone.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mcp_webrtc import LOOPBACK_ONLY, Identity, WebRTCOptions
from mcp_webrtc._core.identity import sign_description, verify_description
from mcp_webrtc._core.sdp import add_capability
from mcp_webrtc.engines import libwebrtc_available
from mcp_webrtc.serve import connect
from tests.support import make_server, mcp_client, rendezvous, serving

HOST, CLIENT = "bench-host", "bench-client"
SDP = (
    "v=0\r\no=- 1 2 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n"
    "m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n"
    "a=fingerprint:sha-256 " + ":".join(["AB"] * 32) + "\r\n"
)


def options(engine: str, **extra: object) -> WebRTCOptions:
    return WebRTCOptions(
        engine=engine,  # type: ignore[arg-type]
        host_candidates=LOOPBACK_ONLY,
        connect_timeout=30,
        **extra,  # type: ignore[arg-type]
    )


async def connect_times(engine: str, runs: int, keys: bool) -> list[float]:
    server_id, client_id = Identity.generate(), Identity.generate()
    served = options(engine)
    client = options(engine)
    if keys:
        served = options(engine, identity=server_id, expect_peer_keys=(client_id.public.line,))
        client = options(engine, identity=client_id, expect_peer_keys=(server_id.public.line,))
    times = []
    async with (
        rendezvous(HOST) as server,
        serving(server.url, HOST, CLIENT, make_server("bench"), options=served),
    ):
        for _ in range(runs + 1):  # the first is a warm-up
            started = time.perf_counter()
            transport = connect(server.url, room="lab", token=CLIENT, options=client)
            async with mcp_client(transport) as session:
                await session.list_tools()
                times.append(time.perf_counter() - started)
    return times[1:]


def crypto_cost() -> tuple[float, float]:
    identity = Identity.generate()
    sdp = add_capability(SDP, 1 << 27)
    count = 2000
    started = time.perf_counter()
    for _ in range(count):
        signed = sign_description(identity, "offer", sdp, None)
    signing = (time.perf_counter() - started) / count
    started = time.perf_counter()
    for _ in range(count):
        verify_description("offer", signed, None)
    return signing, (time.perf_counter() - started) / count


async def main(runs: int) -> None:
    engines = ["aiortc", *(["libwebrtc"] if libwebrtc_available() else [])]
    print(f"connect + initialize + list_tools through the rendezvous, median of {runs}:")
    print(f"{'engine':>10} {'no keys ms':>11} {'keys ms':>9} {'difference ms':>14}")
    for engine in engines:
        plain = statistics.median(await connect_times(engine, runs, keys=False)) * 1000
        keyed = statistics.median(await connect_times(engine, runs, keys=True)) * 1000
        print(f"{engine:>10} {plain:11.2f} {keyed:9.2f} {keyed - plain:14.2f}")
    signing, checking = crypto_cost()
    print(f"one description: signing {signing * 1e6:.0f} us, checking {checking * 1e6:.0f} us")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    anyio.run(main, parser.parse_args().runs)
