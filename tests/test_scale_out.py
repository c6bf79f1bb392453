"""Scale-out with real WebRTC sessions: a rendezvous instance dying under established
sessions, ``serve --workers``, and ``serve``'s own metrics."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from mcp_webrtc import MCPWebRTCError
from mcp_webrtc.serve import connect as webrtc_connect

from . import support
from .services import RedisProcess, SignalProcess, redis_server
from .test_scale import CLIENT_TOKEN, HOST_TOKEN, instances

pytestmark = pytest.mark.anyio


@pytest.fixture
def redis(tmp_path: Path) -> Iterator[RedisProcess]:
    with redis_server(tmp_path) as server:
        yield server


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
