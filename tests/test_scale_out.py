"""Scale-out with real WebRTC sessions: a rendezvous instance dying under established
sessions, ``serve --workers``, and ``serve``'s own metrics."""

from __future__ import annotations

import os
import signal
import sys
import urllib.request
from pathlib import Path
from typing import Any

import anyio
import pytest
from prometheus_client.parser import text_string_to_metric_families

from mcp_webrtc import MCPWebRTCError
from mcp_webrtc.serve import connect as webrtc_connect

from . import support
from .services import RedisProcess, SignalProcess
from .test_scale import CLIENT_TOKEN, HOST_TOKEN, instances

pytestmark = pytest.mark.anyio
ROOT = Path(__file__).resolve().parent.parent


async def test_sessions_outlive_their_instance_and_the_host_moves_on(
    redis: RedisProcess, engine: str
) -> None:
    """Real WebRTC: a host registered on instance A (a process), clients on A and B; A is
    killed: the established sessions go on, the host registers again on B by itself, and
    new clients given both URLs reach it through B."""
    doomed = SignalProcess("--redis", redis.url, "--instance-ttl", "1.5", token=HOST_TOKEN)
    try:
        async with (
            instances(redis, 1, instance_ttl=1.5) as (b,),
            support.serving([doomed.url, b.url], HOST_TOKEN, CLIENT_TOKEN),
            anyio.create_task_group() as tg,
        ):
            both = f"{doomed.url},{b.url}"
            established = []
            for url in (doomed.url, b.url):
                transport = webrtc_connect(
                    url, room="lab", token=CLIENT_TOKEN, options=support.options()
                )
                client = await tg.start(_client_session, transport)
                established.append(client)
            doomed.kill()
            for client in established:
                assert support.text_of(await client.call_tool("greet", {"name": "x"})) == (
                    "Hello, x!"
                )
            with anyio.fail_after(30):  # the host notices, registers on B; both URLs work
                while True:
                    transport = webrtc_connect(
                        both, room="lab", token=CLIENT_TOKEN, options=support.options()
                    )
                    try:
                        async with support.mcp_client(transport) as client:
                            greeting = await client.call_tool("greet", {"name": "new"})
                            break
                    except MCPWebRTCError:
                        await anyio.sleep(0.2)  # not registered again yet
            assert support.text_of(greeting) == "Hello, new!"
            tg.cancel_scope.cancel()
    finally:
        doomed.kill()


async def _client_session(transport: Any, *, task_status: Any) -> None:
    async with support.mcp_client(transport) as client:
        await client.list_tools()
        task_status.started(client)
        await anyio.sleep_forever()


def _metric(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                total += sample.value
    return total


async def _scrape(port: int) -> str:
    def get() -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
            return str(answer.read().decode())

    return await anyio.to_thread.run_sync(get)


async def test_serve_workers_share_a_room_and_are_supervised(engine: str) -> None:
    """`serve --workers 2`: two hosts in the room's pool, joins balanced, a killed worker
    restarted while the other's sessions go on, metrics summed, SIGTERM stops all."""
    port = support.free_port()
    args = support.serve_args("", HOST_TOKEN, CLIENT_TOKEN, "--app", "tests.app:WORKER")
    async with support.rendezvous(HOST_TOKEN) as server:
        args[1] = server.url
        command = [sys.executable, "-m", "mcp_webrtc", *args, "--workers", "2"]
        command += ["--metrics-port", str(port)]
        process = await anyio.open_process(command, cwd=ROOT, stdout=None, stderr=None)
        try:
            with anyio.fail_after(60):
                while (await server.backend.counts()).hosts < 2:  # noqa: ASYNC110 - observed
                    await anyio.sleep(0.1)
            async with anyio.create_task_group() as tg:
                clients = []
                for _ in range(6):
                    transport = webrtc_connect(
                        server.url, room="lab", token=CLIENT_TOKEN, options=support.options()
                    )
                    clients.append(await tg.start(_client_session, transport))
                pids = [support.text_of(await c.call_tool("whoami", {})) for c in clients]
                assert sorted(pids.count(pid) for pid in set(pids)) == [3, 3]  # balanced
                text = await _scrape(port)
                assert _metric(text, "mcp_webrtc_serve_workers") == 2
                assert _metric(text, "mcp_webrtc_serve_sessions") == 6
                calls = _metric(
                    text, "mcp_webrtc_serve_requests_total", method="tools/call", outcome="ok"
                )
                assert calls == 6
                assert _metric(text, "mcp_webrtc_serve_request_seconds_count") >= 6
                victim = pids[0]
                os.kill(int(victim), signal.SIGKILL)
                registers = server.metrics.registry.get_sample_value
                with anyio.fail_after(60):  # restarted: it registered again
                    while registers("mcp_webrtc_rendezvous_registers_total") != 3:  # noqa: ASYNC110
                        await anyio.sleep(0.1)
                assert (await server.backend.counts()).hosts == 2
                assert _metric(await _scrape(port), "mcp_webrtc_serve_workers") == 2
                for client, pid in zip(clients, pids, strict=True):
                    if pid != victim:  # the other worker's sessions never noticed
                        assert support.text_of(await client.call_tool("whoami", {})) == pid
                transport = webrtc_connect(
                    server.url, room="lab", token=CLIENT_TOKEN, options=support.options()
                )
                async with support.mcp_client(transport) as newcomer:
                    fresh = support.text_of(await newcomer.call_tool("whoami", {}))
                assert fresh not in pids  # the restarted worker had the fewest sessions
                process.send_signal(signal.SIGTERM)
                with anyio.fail_after(20):
                    assert await process.wait() == 0
                    while (await server.backend.counts()).hosts:  # noqa: ASYNC110 - observed
                        await anyio.sleep(0.05)
                tg.cancel_scope.cancel()
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
