"""MCP sessions over WebRTC with MemorySignaling: the seed's README example and friends."""

from __future__ import annotations

import asyncio
import hashlib
import logging

import anyio
import pytest

from mcp_webrtc import (
    MemorySignaling,
    WebRTCClientTransport,
    WebRTCServerTransport,
    run_server,
)

from .support import (
    make_server,
    mcp_client,
    memory_pair,
    options,
    payload,
    text_of,
    wait_until,
)

pytestmark = [pytest.mark.anyio, pytest.mark.core]


async def test_seed_readme_example_greet() -> None:
    # memory_pair only exits once run_server returned: the server's session ends by
    # itself when the client leaves.
    with anyio.fail_after(30):
        async with memory_pair(make_server("greeter")) as (client, _):
            tools = await client.list_tools()
            assert "greet" in {tool.name for tool in tools.tools}
            result = await client.call_tool("greet", {"name": "WebRTC"})
            assert text_of(result) == "Hello, WebRTC!"


async def test_server_returns_when_client_leaves() -> None:
    a, b = MemorySignaling.create_pair()
    server_done = anyio.Event()

    async def serve() -> None:
        await run_server(make_server(), WebRTCServerTransport(a, options()))
        server_done.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(serve)
        async with mcp_client(WebRTCClientTransport(b, options())) as client:
            await client.list_tools()
        with anyio.fail_after(10):
            await server_done.wait()


async def test_client_can_be_the_offerer() -> None:
    async with memory_pair(
        server_options=options(initiator=False), client_options=options(initiator=True)
    ) as (client, transport):
        assert text_of(await client.call_tool("greet", {"name": "x"})) == "Hello, x!"
        assert transport.peer.initiator


@pytest.mark.parametrize("size", [100, 262_143, 262_145, 1024 * 1024])
async def test_round_trip_sizes_both_directions(size: int) -> None:
    data = payload(size, seed=size)
    async with memory_pair() as (client, _):
        # argument (client -> server): the server hashes what it received
        digest = text_of(await client.call_tool("digest", {"data": data}))
        assert digest == f"{hashlib.sha256(data.encode()).hexdigest()}:{size}"
        # result (server -> client), byte-exact
        assert text_of(await client.call_tool("blob", {"size": size, "seed": size})) == data
        # and both ways in one call
        assert text_of(await client.call_tool("echo", {"data": data})) == data


async def test_small_calls_overtake_a_large_transfer() -> None:
    """Small calls made while a 16 MiB result streams in complete before it does.

    Without interleaving, each small answer would queue behind the rest of the large one.
    (What still delays them is SCTP's in-flight window, not our queue; see the README.)
    """
    order: list[str] = []
    async with memory_pair() as (client, transport):

        async def big() -> None:
            result = await client.call_tool("blob", {"size": 16 * 1024 * 1024, "seed": 1})
            assert len(text_of(result)) == 16 * 1024 * 1024
            order.append("big")

        async with anyio.create_task_group() as calls:
            start = transport.connection_info().bytes_received
            calls.start_soon(big)
            # Start the small calls once the large result is streaming in.
            await wait_until(
                lambda: transport.connection_info().bytes_received > start + 1024 * 1024
            )
            for i in range(3):
                result = await client.call_tool("greet", {"name": str(i)})
                assert text_of(result) == f"Hello, {i}!"
                order.append(f"small{i}")
    assert order == ["small0", "small1", "small2", "big"]


async def test_leaving_the_transport_leaves_no_tasks() -> None:
    before = set(asyncio.all_tasks())
    async with memory_pair() as (client, _):
        await client.list_tools()
    # aiortc finishes closing its transports asynchronously; give it a bounded moment
    with anyio.fail_after(5):
        while leftover := {t for t in asyncio.all_tasks() - before if not t.done()} - {
            asyncio.current_task()
        }:
            logging.getLogger(__name__).debug("waiting for %s", leftover)
            await anyio.sleep(0.05)


async def test_an_error_in_the_body_comes_out_as_itself() -> None:
    """Regression: the caller's exception came out wrapped in an ExceptionGroup."""
    a, b = MemorySignaling.create_pair()
    async with anyio.create_task_group() as tg:
        tg.start_soon(run_server, make_server(), WebRTCServerTransport(a, options()))
        with pytest.raises(KeyError, match="mine"):
            async with WebRTCClientTransport(b, options()):
                raise KeyError("mine")
