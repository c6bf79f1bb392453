"""Scale-out at the protocol level: rendezvous instances sharing one redis-server, host
pools (both backends), instance death, Redis outages, and the /metrics endpoint."""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest
from prometheus_client.parser import text_string_to_metric_families
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from mcp_webrtc._core import rendezvous as proto
from mcp_webrtc.rendezvous import RendezvousConfig, RendezvousServer

from .services import RedisProcess, SignalProcess
from .support import free_port
from .test_rendezvous import recv, send

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parent.parent
HAPROXY = shutil.which("haproxy") or shutil.which("haproxy", path="/usr/sbin")
HOST_TOKEN = "host-secret"
CLIENT_TOKEN = "client-secret"


@asynccontextmanager
async def instances(
    redis: RedisProcess | None, count: int, **config: Any
) -> AsyncIterator[list[RendezvousServer]]:
    """``count`` rendezvous instances sharing ``redis`` (one in-memory one without)."""
    settings: dict[str, Any] = {"port": 0, "host_tokens": (HOST_TOKEN,), **config}
    if redis is not None:
        settings["redis_url"] = redis.url
    async with AsyncExitStack() as stack:
        servers = [
            await stack.enter_async_context(RendezvousServer(RendezvousConfig(**settings)))
            for _ in range(count if redis is not None else 1)
        ]
        yield servers


async def register(url: str, room: str = "lab", client_token: str = CLIENT_TOKEN) -> Any:
    ws = await connect(url, close_timeout=1)
    await send(ws, type="register", room=room, token=HOST_TOKEN, clientToken=client_token)
    return ws, await recv(ws)


async def join(url: str, room: str = "lab") -> Any:
    ws = await connect(url, close_timeout=1)
    await send(ws, type="join", room=room, token=CLIENT_TOKEN)
    return ws, await recv(ws)


async def closed_with(ws: ClientConnection) -> list[Any]:
    """What arrives until the connection closes."""
    seen = []
    with anyio.fail_after(15):
        try:
            while True:
                seen.append(json.loads(await ws.recv()))
        except ConnectionClosed:
            return seen


async def test_a_host_on_one_instance_serves_clients_joining_on_others(
    redis: RedisProcess,
) -> None:
    async with instances(redis, 3) as (a, b, c):
        host, registered = await register(a.url)
        assert registered["type"] == "registered"
        clients = []
        for server in (b, c):
            ws, joined = await join(server.url)
            assert joined["type"] == "joined"
            told = await recv(host)
            assert (told["type"], told["session"]) == ("peer-joined", joined["session"])
            assert told["share"]["hosts"] == 1
            clients.append((ws, joined["session"]))
        # signals both ways, in order, each once: 200 per direction per session
        for ws, session in clients:
            for n in range(200):
                await send(host, type="signal", session=session, signal={"n": n})
                await send(ws, type="signal", signal={"n": n})
        for ws, _ in clients:
            assert [(await recv(ws))["signal"]["n"] for _ in range(200)] == list(range(200))
        got: dict[str, list[int]] = {session: [] for _, session in clients}
        for _ in range(400):
            message = await recv(host)
            got[message["session"]].append(message["signal"]["n"])
        assert all(numbers == list(range(200)) for numbers in got.values())
        await clients[0][0].close()
        assert await recv(host) == {"type": "peer-left", "session": clients[0][1]}
        await host.close()
        assert (await closed_with(clients[1][0]))[-1]["code"] == proto.HOST_LEFT


async def test_limits_hold_across_instances(redis: RedisProcess) -> None:
    async with instances(redis, 3, max_rooms=1, max_sessions_per_room=2) as (a, b, c):
        host, _ = await register(a.url)
        other, refused = await register(b.url, room="other")
        assert refused["code"] == proto.TOO_MANY_ROOMS
        taken, refused = await register(c.url, client_token="another")
        assert refused["code"] == proto.ROOM_TAKEN
        first, _ = await join(b.url)
        second, _ = await join(c.url)
        full, refused = await join(a.url)
        assert refused["code"] == proto.ROOM_FULL
        await first.close()
        assert (await recv(host))["type"] == "peer-joined"
        again, joined = await join(a.url)  # the session that left freed its place
        assert joined["type"] == "joined"
        for ws in (host, other, taken, second, full, again):
            await ws.close()


@pytest.mark.parametrize("shared", [False, True], ids=["memory", "redis"])
async def test_a_pool_of_hosts_shares_joins_and_survives_one_leaving(
    redis: RedisProcess, shared: bool
) -> None:
    async with instances(redis if shared else None, 2) as servers:
        first, _ = await register(servers[0].url)
        second, answer = await register(servers[-1].url)
        assert answer["type"] == "registered"
        clients = [await join(servers[i % len(servers)].url) for i in range(10)]
        sessions: dict[str, list[str]] = {"first": [], "second": []}
        shares = []
        for name, host in (("first", first), ("second", second)):
            with anyio.move_on_after(1):
                while len(sessions[name]) < 10:
                    told = await recv(host)
                    sessions[name].append(told["session"])
                    shares.append(told["share"])
        assert len(sessions["first"]) == len(sessions["second"]) == 5
        assert all(share["hosts"] == 2 for share in shares)
        assert max(share["roomSessions"] for share in shares) == 10
        assert sorted(share["sessions"] for share in shares) == sorted([*range(1, 6)] * 2)
        await first.close()  # only its own sessions end
        by_session = {joined["session"]: ws for ws, joined in clients}
        for session in sessions["first"]:
            assert (await closed_with(by_session[session]))[-1]["code"] == proto.HOST_LEFT
        kept = sessions["second"][0]
        await send(by_session[kept], type="signal", signal={"still": "here"})
        assert (await recv(second))["signal"] == {"still": "here"}
        late, joined = await join(servers[0].url)  # new joins go to the host that stayed
        told = await recv(second)
        assert (told["session"], told["share"]["hosts"]) == (joined["session"], 1)
        for ws in (second, late, *by_session.values()):
            await ws.close()


async def test_a_host_may_not_signal_another_hosts_session(redis: RedisProcess) -> None:
    async with instances(redis, 2) as (a, b):
        hosts = [(await register(a.url))[0], (await register(b.url))[0]]
        client, joined = await join(a.url)
        owner = None
        for ws in hosts:
            with anyio.move_on_after(1):
                assert (await recv(ws))["session"] == joined["session"]
                owner = ws
        assert owner is not None
        intruder = hosts[1] if owner is hosts[0] else hosts[0]
        await send(intruder, type="signal", session=joined["session"], signal={"from": "x"})
        refused = await recv(intruder)
        assert refused["code"] == proto.UNKNOWN_SESSION
        await send(owner, type="signal", session=joined["session"], signal={"from": "owner"})
        assert (await recv(client))["signal"] == {"from": "owner"}
        for ws in (*hosts, client):
            await ws.close()


async def test_a_dead_instance_is_released_and_its_host_moves(
    redis: RedisProcess, tmp_path: Path
) -> None:
    ttl = "1.5"
    doomed = SignalProcess("--redis", redis.url, "--instance-ttl", ttl, token=HOST_TOKEN)
    try:
        async with instances(redis, 1, instance_ttl=1.5) as (b,):
            host, _ = await register(doomed.url)
            client, joined = await join(b.url)
            assert (await recv(host))["type"] == "peer-joined"
            doomed.kill()
            with anyio.fail_after(10):
                start = anyio.current_time()
                ended = await closed_with(client)
                released_after = anyio.current_time() - start
            assert ended[-1]["code"] == proto.HOST_LEFT
            assert released_after <= 1.5 + 0.5 + 1.0  # ttl, one heartbeat, slack
            host, registered = await register(b.url)  # the host registers again elsewhere
            assert registered["type"] == "registered"
            client, joined = await join(b.url)
            assert (await recv(host))["session"] == joined["session"]
            await host.close()
            await client.close()
    finally:
        doomed.kill()


async def test_a_redis_outage_refuses_clearly_then_recovers(redis: RedisProcess) -> None:
    async with instances(redis, 2, instance_ttl=1.5) as (a, b):
        host, _ = await register(a.url)
        client, joined = await join(b.url)
        session = joined["session"]
        assert (await recv(host))["session"] == session
        assert (await http_get(b, "/healthz"))[0] == 200
        redis.kill()
        refused_ws, refused = await join(b.url)
        assert refused["code"] == proto.BACKEND_UNAVAILABLE
        assert "shared store" in refused["message"]
        status, body = await http_get(b, "/healthz")  # a load balancer takes it out
        assert (status, json.loads(body)["status"]) == (503, "backend-unavailable")
        redis.start()  # empty, as a restarted Redis without persistence is
        # the host's instance finds its state gone and asks it to register again
        dropped = await closed_with(host)
        assert dropped[-1]["code"] == proto.BACKEND_UNAVAILABLE
        with anyio.fail_after(10):
            while True:
                host, registered = await register(a.url)
                if registered["type"] == "registered":
                    break
                await anyio.sleep(0.2)  # the instance is announcing itself again
        with anyio.fail_after(10):
            while True:
                newcomer, joined = await join(b.url)
                if joined["type"] == "joined":
                    break
                await anyio.sleep(0.2)
        assert (await recv(host))["session"] == joined["session"]
        for ws in (host, client, refused_ws, newcomer):
            await ws.close()


async def test_metrics_are_prometheus_text(redis: RedisProcess) -> None:
    async with instances(redis, 2) as (a, b):
        host, _ = await register(a.url)
        client, _ = await join(b.url)
        await recv(host)
        await send(client, type="signal", signal={"x": 1})
        await recv(host)
        wrong = await connect(b.url)
        await send(wrong, type="join", room="lab", token="wrong")
        await recv(wrong)
        families = {f.name: f for f in text_string_to_metric_families(await scrape(b))}

        def value(name: str, **labels: str) -> float:
            for sample in families[name].samples:
                counted = sample.name.endswith("_total") or sample.name == name
                if counted and all(sample.labels.get(k) == v for k, v in labels.items()):
                    return float(sample.value)
            raise AssertionError(f"no {name} {labels}")

        prefix = "mcp_webrtc_rendezvous"
        assert value(f"{prefix}_rooms") == 1
        assert value(f"{prefix}_sessions") == 1
        assert value(f"{prefix}_hosts") == 1
        assert value(f"{prefix}_joins") == 1
        assert value(f"{prefix}_refusals", code=proto.UNAUTHORIZED) == 1
        assert value(f"{prefix}_signals_relayed", by="client") == 1
        assert value(f"{prefix}_connected", role="client") == 1
        assert families[f"{prefix}_backend_seconds"].samples
        assert families[f"{prefix}_instance_info"].samples[0].labels["backend"] == "redis"
        for ws in (host, client, wrong):
            await ws.close()


async def scrape(server: RendezvousServer) -> str:
    status, body = await http_get(server, "/metrics")
    assert status == 200
    return body


async def http_get(server: RendezvousServer, path: str) -> tuple[int, str]:
    stream = await anyio.connect_tcp("127.0.0.1", server.port)
    async with stream:
        request = f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        await stream.send(request.encode())
        response = b""
        with anyio.fail_after(5):
            try:
                while True:
                    response += await stream.receive()
            except anyio.EndOfStream:
                pass
    head, _, body = response.partition(b"\r\n\r\n")
    return int(head.split()[1]), body.decode()


def haproxy_config(frontend: int, a: int, b: int) -> str:
    """The HAProxy configuration shown in docs/deployment.md, on these ports."""
    text = (ROOT / "docs/deployment.md").read_text()
    block = text.split("A tested HAProxy\nconfiguration", 1)[1].split("```", 2)[1]
    for old, new in (("8765", frontend), ("8801", a), ("8802", b)):
        block = block.replace(f"127.0.0.1:{old}", f"127.0.0.1:{new}")
    return block.strip() + "\n"


async def test_haproxy_in_front_of_two_instances(redis: RedisProcess, tmp_path: Path) -> None:
    """The documented HAProxy configuration: any instance serves any peer, and a dead
    instance is taken out of rotation by the health check."""
    a = SignalProcess("--redis", redis.url, "--instance-ttl", "1.5", token=HOST_TOKEN)
    b = SignalProcess("--redis", redis.url, "--instance-ttl", "1.5", token=HOST_TOKEN)
    frontend = free_port()
    config = tmp_path / "haproxy.cfg"
    config.write_text(haproxy_config(frontend, a.port, b.port))
    assert HAPROXY is not None, "haproxy is missing: run `make test`"
    command = [HAPROXY, "-f", str(config), "-db"]
    balancer = subprocess.Popen(command, stdout=subprocess.DEVNULL)  # noqa: ASYNC220
    url = f"ws://127.0.0.1:{frontend}/"
    try:
        with anyio.fail_after(10):
            while True:  # haproxy listening, both instances checked up
                with contextlib.suppress(OSError, InvalidStatus):
                    host, registered = await register(url)
                    if registered["type"] == "registered":
                        break
                await anyio.sleep(0.1)
        joined = [await join(url) for _ in range(4)]  # round robin: both instances
        assert all(answer["type"] == "joined" for _, answer in joined)
        for _ in joined:
            assert (await recv(host))["type"] == "peer-joined"
        a.kill()
        with anyio.fail_after(15):  # the pool host on B, or the one registered again
            while True:
                with contextlib.suppress(OSError, ConnectionClosed, InvalidStatus):
                    host, registered = await register(url)
                    if registered["type"] == "registered":
                        break
                await anyio.sleep(0.2)
        for _ in range(4):  # every join reaches a live instance: A is out of rotation
            ws, answer = await join(url)
            assert answer["type"] == "joined"
            await ws.close()
        await host.close()
    finally:
        balancer.kill()
        balancer.wait()
        a.kill()
        b.kill()
