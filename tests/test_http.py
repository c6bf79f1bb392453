"""Streamable HTTP on both sides of WebRTC, as its users meet it: `serve --url` in front of
HTTP MCP servers (an MCPServer under uvicorn, server-everything in its HTTP mode) and
`connect --listen` behind HTTP-only clients (the Python and TypeScript SDKs' own), each
compared with the same client talking HTTP to the server directly."""

from __future__ import annotations

import json
import os
import socket
import sys
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import anyio
import mcp
import pytest
from mcp import StdioServerParameters, types
from mcp.client.stdio import stdio_client

from . import support
from .support import MCPError, free_port, wait_until
from .test_bridges import (
    CLIENT_TOKEN,
    ROOT,
    Raw,
    connect_args,
    process,
    rendezvous,
    serve_process,
)

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.skipif(not support.MCP2, reason="the scenario drives mcp 2.x's Client"),
]

HTTP_TIMEOUT = 30


def _accepts(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


@asynccontextmanager
async def http_server(*command: str, env: dict[str, str] | None = None) -> AsyncIterator[str]:
    """An HTTP MCP server process (the rich test server by default) on a free port; yields
    its URL once it accepts connections."""
    port = free_port()
    args = list(command) or [sys.executable, "-m", "tests.rich_server", "{port}"]
    args = [arg.replace("{port}", str(port)) for arg in args]
    proc = await anyio.open_process(args, cwd=ROOT, env={**os.environ, **(env or {})})
    try:
        await wait_until(lambda: _accepts(port) or proc.returncode is not None, 30)
        assert proc.returncode is None, "the HTTP server exited"
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        if proc.returncode is None:
            proc.kill()
        with anyio.CancelScope(shield=True):
            await proc.wait()
            await proc.aclose()


@asynccontextmanager
async def listening(url: str, *extra: str, token: str = CLIENT_TOKEN) -> AsyncIterator[Raw]:
    """`connect --listen` on a free loopback port; ``.url`` is its endpoint."""
    port = free_port()
    async with process(*connect_args(url, "--listen", str(port), *extra, token=token)) as proc:
        await proc.stderr_until("listening at")
        proc.url = f"http://127.0.0.1:{port}/mcp"  # type: ignore[attr-defined]
        yield proc


def connect_stdio(url: str) -> AbstractAsyncContextManager[Any]:
    """The official stdio client running `mcp-webrtc connect`."""
    params = StdioServerParameters(
        command=sys.executable, args=["-m", "mcp_webrtc", *connect_args(url)], cwd=str(ROOT)
    )
    return stdio_client(params)


def http_client(url: str) -> AbstractAsyncContextManager[Any]:
    """The official Streamable HTTP client; without its 1 MiB bound on one server-sent
    event (mcp 2.x), which a 2 MiB result exceeds over HTTP with or without us."""
    from mcp.client.streamable_http import streamable_http_client

    return streamable_http_client(url, max_sse_event_size=None)


async def scenario(transport: Any, wait: float, mode: str = "auto") -> dict[str, Any]:
    """What a client sees of every feature of the rich server (tests/rich_server.py)."""
    seen: dict[str, Any] = {"logs": [], "progress": []}

    async def sampling(context: Any, params: types.CreateMessageRequestParams) -> Any:
        question = getattr(params.messages[0].content, "text", "")
        answer = types.TextContent(type="text", text=f"you asked {question}")
        return types.CreateMessageResult(role="assistant", content=answer, model="test")

    async def elicitation(context: Any, params: Any) -> Any:
        return types.ElicitResult(action="accept", content={"ok": True})

    async def logging(params: types.LoggingMessageNotificationParams) -> None:
        seen["logs"].append(params.data)

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen["progress"].append([progress, total, message])

    async with mcp.Client(
        transport,
        sampling_callback=sampling,
        elicitation_callback=elicitation,
        logging_callback=logging,
        mode=mode,
    ) as client:
        seen["tools"] = sorted(tool.name for tool in (await client.list_tools()).tools)
        counted = await client.call_tool("count", {"n": 3}, progress_callback=on_progress)
        seen["count"] = support.text_of(counted)
        seen["ask"] = support.text_of(await client.call_tool("ask", {"question": "why"}))
        seen["confirm"] = support.text_of(await client.call_tool("confirm", {"question": "ok?"}))
        resources = (await client.list_resources()).resources
        seen["resources"] = sorted(str(resource.uri) for resource in resources)
        templates = (await client.list_resource_templates()).resource_templates
        seen["templates"] = [template.uri_template for template in templates]
        read = await client.read_resource("note://greeting/ann")
        seen["greeting"] = getattr(read.contents[0], "text", None)
        seen["prompts"] = [prompt.name for prompt in (await client.list_prompts()).prompts]
        prompt = await client.get_prompt("review", {"code": "x = 1"})
        seen["prompt"] = getattr(prompt.messages[0].content, "text", None)
        big = support.payload(2 * 1024 * 1024, seed=int(wait))
        echoed = support.text_of(await client.call_tool("echo", {"data": big}))
        seen["echo 2 MiB intact"] = echoed == big
        with pytest.raises(MCPError):  # the client gives up and cancels the call
            await client.call_tool("wait", {"seconds": wait}, read_timeout_seconds=0.5)

        async def cancelled() -> bool:
            text = support.text_of(await client.call_tool("cancelled", {}))
            return f"{wait:g}" in text.split(",")

        with anyio.fail_after(10):
            while not await cancelled():  # noqa: ASYNC110 - the server's own record
                await anyio.sleep(0.05)
        seen["cancelled"] = True
    return seen


# ------------------------------------------------------------------ parity


async def test_http_server_behind_serve_and_http_clients_through_connect_see_the_same() -> None:
    """An MCPServer under uvicorn: the official client directly over HTTP, through
    `connect` (stdio) -> WebRTC -> `serve --url`, and through `connect --listen` (HTTP) ->
    WebRTC -> `serve --url` sees the same tools, resources, prompts, progress, logs,
    sampling, elicitation and cancellation; each bridged session is DELETEd at the end."""
    async with http_server() as url, rendezvous() as rdv, serve_process(rdv.url, "--url", url):
        await support.wait_registered(rdv)
        with anyio.fail_after(HTTP_TIMEOUT):
            direct = await scenario(http_client(url), wait=31, mode="legacy")
        with anyio.fail_after(HTTP_TIMEOUT):
            over_stdio = await scenario(connect_stdio(rdv.url), wait=32)
        async with listening(rdv.url) as proxy:
            with anyio.fail_after(HTTP_TIMEOUT):
                over_http = await scenario(http_client(proxy.url), wait=33)  # type: ignore[attr-defined]

            asked: list[int] = []

            async def deletes() -> int:
                """DELETEs the server received, but those of the clients asking this."""
                async with mcp.Client(http_client(url), mode="legacy") as client:
                    counts = json.loads(support.text_of(await client.call_tool("http_methods")))
                asked.append(1)
                return int(counts.get("DELETE", 0)) - (len(asked) - 1)

            # the sessions of direct, over_stdio and (once its client ended) over_http
            with anyio.fail_after(10):
                while await deletes() < 3:  # noqa: ASYNC110 - the server's own record
                    await anyio.sleep(0.1)
    assert direct["progress"] == [[float(i), 3.0, f"step {i}"] for i in (1, 2, 3)]
    assert direct["logs"] == ["step 1 of 3", "step 2 of 3", "step 3 of 3"]
    assert direct["ask"] == "the model said: you asked why"
    assert direct["confirm"] == "accept: True"
    assert direct["templates"] == ["note://greeting/{name}"]
    assert direct["echo 2 MiB intact"]
    assert direct["cancelled"]
    assert over_stdio == direct
    assert over_http == direct
