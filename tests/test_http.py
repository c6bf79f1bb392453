"""Streamable HTTP on both sides of WebRTC, as its users meet it: `serve --url` in front of
HTTP MCP servers (an MCPServer under uvicorn, server-everything in its HTTP mode) and
`connect --listen` behind HTTP-only clients (the Python and TypeScript SDKs' own), each
compared with the same client talking HTTP to the server directly."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import sys
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
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
    EVERYTHING,
    HOST_TOKEN,
    ROOT,
    Raw,
    connect_args,
    initialize,
    process,
    rendezvous,
    serve_args,
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
    extra = {name: value.replace("{port}", str(port)) for name, value in (env or {}).items()}
    proc = await anyio.open_process(args, cwd=ROOT, env={**os.environ, **extra})
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


# ------------------------------------------------------------------ third-party peers


@pytest.mark.skipif(not EVERYTHING.exists(), reason="run `make test` to install the npm peers")
async def test_server_everything_in_http_mode_behind_serve() -> None:
    """The reference TypeScript server in its Streamable HTTP mode, through `serve --url`,
    driven by the official Python client through `connect`."""
    sampled: list[str] = []

    async def sampling(context: Any, params: types.CreateMessageRequestParams) -> Any:
        sampled.append(str(getattr(params.messages[0].content, "text", "")))
        answer = types.TextContent(type="text", text="sampled over WebRTC")
        return types.CreateMessageResult(role="assistant", content=answer, model="test")

    steps: list[float] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        steps.append(progress)

    everything = ("node", str(EVERYTHING), "streamableHttp")
    async with (
        http_server(*everything, env={"PORT": "{port}"}) as url,
        rendezvous() as rdv,
        serve_process(rdv.url, "--url", url),
    ):
        await support.wait_registered(rdv)
        with anyio.fail_after(HTTP_TIMEOUT):
            async with mcp.Client(connect_stdio(rdv.url), sampling_callback=sampling) as client:
                tools = {tool.name for tool in (await client.list_tools()).tools}
                echoed = await client.call_tool("echo", {"message": "through WebRTC"})
                await client.set_logging_level("debug")
                operation = {"duration": 0.3, "steps": 3}
                await client.call_tool(
                    "trigger-long-running-operation", operation, progress_callback=on_progress
                )
                asked = await client.call_tool("trigger-sampling-request", {"prompt": "hi"})
    assert {"echo", "trigger-long-running-operation", "trigger-sampling-request"} <= tools
    assert support.text_of(echoed) == "Echo: through WebRTC"
    assert steps == [1, 2, 3]
    assert len(sampled) == 1
    assert "hi" in sampled[0]
    assert "sampled over WebRTC" in json.dumps(asked.model_dump())


async def test_the_typescript_sdk_http_client_through_connect_listen() -> None:
    """An HTTP-only client (the TypeScript SDK's) -> `connect --listen` -> WebRTC ->
    `serve --url` -> an MCPServer under uvicorn: tools, 3 MiB both ways, progress."""
    script = ROOT / "tests/node/http_client.mjs"
    async with (
        http_server() as url,
        rendezvous() as rdv,
        serve_process(rdv.url, "--url", url),
        listening(rdv.url) as proxy,
    ):
        await support.wait_registered(rdv)
        with anyio.fail_after(HTTP_TIMEOUT):
            done = await anyio.run_process(
                ["node", str(script), proxy.url, str(3 * 1024 * 1024)],  # type: ignore[attr-defined]
                cwd=ROOT / "tests/node",
                check=False,
            )
    assert done.returncode == 0, done.stderr.decode()
    seen = json.loads(done.stdout.decode().strip().splitlines()[-1])
    assert "count" in seen["tools"]
    assert "echo" in seen["tools"]
    assert seen["session"]
    assert seen["echoIntact"]
    assert seen["counted"] == "counted to 3"
    assert seen["progress"] == [[1, 3], [2, 3], [3, 3]]


# ------------------------------------------------------------------ when things go wrong


async def test_an_unreachable_url_is_named_in_the_answer_to_initialize() -> None:
    url = f"http://127.0.0.1:{free_port()}/mcp"  # nothing listens there
    async with rendezvous() as rdv, serve_process(rdv.url, "--url", url):
        await support.wait_registered(rdv)
        async with process(*connect_args(rdv.url)) as client:
            await client.send(initialize(1))
            answer = await client.recv()
            await client.send(initialize(2))  # a client trying again is told too
            again = await client.recv()
    assert answer["id"] == 1
    assert url in answer["error"]["message"]
    assert "unreachable" in answer["error"]["message"]
    assert again["error"]["message"] == answer["error"]["message"]


async def test_an_http_server_that_dies_mid_session_is_named_to_the_client() -> None:
    async with (
        http_server() as url,
        rendezvous() as rdv,
        serve_process(rdv.url, "--url", url),
    ):
        await support.wait_registered(rdv)
        with anyio.fail_after(HTTP_TIMEOUT):
            async with mcp.Client(connect_stdio(rdv.url)) as client:
                await client.list_tools()
                pid = int(support.text_of(await client.call_tool("pid")))
                os.kill(pid, signal.SIGKILL)
                with pytest.raises(MCPError) as failed:
                    await client.call_tool("echo", {"data": "anyone?"})
                with pytest.raises(MCPError) as again:
                    await client.list_tools()
    assert f"the MCP server at {url} is unreachable" in str(failed.value)
    assert f"the MCP server at {url} is unreachable" in str(again.value)


@pytest.mark.parametrize("given", ["flag", "environment"])
async def test_headers_reach_the_http_server_and_never_a_log(given: str) -> None:
    secret = "Bearer s3cret-header-value"
    header = f"Authorization: {secret}"
    flags = ["--header", header] if given == "flag" else []
    env = {**os.environ, "MCP_WEBRTC_HTTP_HEADERS": f"X-Other: 1\n{header}"}
    async with (
        http_server() as url,
        rendezvous() as rdv,
        process(
            "-vvv", *serve_args(rdv.url, "--url", url, *flags), env=None if flags else env
        ) as host,
    ):
        await support.wait_registered(rdv)
        with anyio.fail_after(HTTP_TIMEOUT):
            async with mcp.Client(connect_stdio(rdv.url)) as client:
                seen = support.text_of(await client.call_tool("authorization"))
    assert seen == secret
    assert host.stderr_lines
    assert not [line for line in host.stderr_lines if "s3cret" in line]


async def test_stopping_serve_deletes_the_http_sessions_of_its_peers() -> None:
    async with http_server() as url, rendezvous() as rdv:
        async with serve_process(rdv.url, "--url", url) as host:
            await support.wait_registered(rdv)
            async with mcp.Client(connect_stdio(rdv.url)) as client:
                await client.list_tools()
                host.process.send_signal(signal.SIGTERM)
                assert await host.exit_status() == 0
        with anyio.fail_after(HTTP_TIMEOUT):
            async with mcp.Client(http_client(url), mode="legacy") as client:
                counts = json.loads(support.text_of(await client.call_tool("http_methods")))
    assert counts["DELETE"] == 1


async def test_connect_listen_tells_http_clients_why_it_cannot_connect() -> None:
    async with (
        rendezvous() as rdv,
        serve_process(rdv.url),
        listening(rdv.url, token="not-the-token") as proxy,
    ):
        await support.wait_registered(rdv)
        with anyio.fail_after(HTTP_TIMEOUT), pytest.raises(BaseExceptionGroup) as refused:
            async with mcp.Client(http_client(proxy.url)):  # type: ignore[attr-defined]
                pass
    assert refused.group_contains(
        MCPError, match=r"could not connect.*\(unauthorized\)", depth=None
    )


async def test_connect_listen_tells_http_clients_when_the_server_goes_away() -> None:
    async with rendezvous() as rdv, serve_process(rdv.url) as host:
        await support.wait_registered(rdv)
        failure: list[str] = []
        async with listening(rdv.url) as proxy:
            endpoint = proxy.url  # type: ignore[attr-defined]
            with anyio.fail_after(HTTP_TIMEOUT):
                async with (
                    mcp.Client(http_client(endpoint)) as client,
                    anyio.create_task_group() as tg,
                ):

                    async def pending_call() -> None:
                        with pytest.raises(MCPError) as failed:
                            await client.call_tool("wait", {"seconds": 60})
                        failure.append(str(failed.value))

                    tg.start_soon(pending_call)
                    await client.list_tools()  # sent after the call
                    host.process.kill()  # no bye, no answer: the peer just vanishes
    assert "room 'lab'" in failure[0]
    assert "went away (no answer from the peer" in failure[0]


@pytest.mark.parametrize(
    ("headers", "status"),
    [({"Host": "evil.example"}, 421), ({"Origin": "http://evil.example"}, 403)],
    ids=["dns-rebinding-host", "foreign-origin"],
)
async def test_connect_listen_refuses_foreign_hosts_and_origins(
    headers: dict[str, str], status: int
) -> None:
    import httpx2

    body = json.dumps(initialize(1))
    async with rendezvous() as rdv, serve_process(rdv.url), listening(rdv.url) as proxy:
        await support.wait_registered(rdv)
        accept = {"Accept": "application/json, text/event-stream"}
        async with httpx2.AsyncClient() as http:
            refused = await http.post(
                proxy.url,  # type: ignore[attr-defined]
                content=body,
                headers={"Content-Type": "application/json", **accept, **headers},
            )
    assert refused.status_code == status


async def test_connect_listen_refuses_an_address_that_is_not_loopback() -> None:
    async with process(*connect_args("ws://127.0.0.1:9/", "--listen", "0.0.0.0:0")) as proxy:
        status = await proxy.exit_status()
    assert status != 0
    assert any("--listen-any" in line for line in proxy.stderr_lines)


async def test_connect_listen_waits_for_a_server_that_starts_later() -> None:
    """`--wait`: an HTTP client's initialize waits for the room, as the stdio proxy's."""
    tools: list[str] = []
    async with rendezvous() as rdv, listening(rdv.url, "--wait", "60") as proxy:
        endpoint = proxy.url  # type: ignore[attr-defined]
        async with anyio.create_task_group() as tg:

            async def client() -> None:
                async with mcp.Client(http_client(endpoint)) as session:
                    tools.extend(tool.name for tool in (await session.list_tools()).tools)

            tg.start_soon(client)
            await proxy.stderr_until("waiting for room 'lab'")
            async with serve_process(rdv.url):
                with anyio.fail_after(60):
                    await wait_until(lambda: bool(tools), 60)
    assert "greet" in tools


async def test_connect_listen_pins_the_key_its_first_session_recorded(tmp_path: Path) -> None:
    """Regression: the key was looked up once, at start, so a long-running `--listen`
    accepted any key after recording the first; each HTTP session must check it."""
    from mcp_webrtc import Identity

    first, second = Identity.generate("first"), Identity.generate("second")
    known = tmp_path / "known_servers"
    async with rendezvous() as rdv, listening(rdv.url, "--known-servers", str(known)) as proxy:
        endpoint = proxy.url  # type: ignore[attr-defined]
        for identity in (first, first, second):
            served = support.options(identity=identity)
            async with support.serving(rdv.url, HOST_TOKEN, CLIENT_TOKEN, options=served):
                with anyio.fail_after(HTTP_TIMEOUT):
                    if identity is first:
                        async with mcp.Client(http_client(endpoint)) as client:
                            await client.list_tools()
                        continue
                    with pytest.raises(BaseExceptionGroup) as refused:
                        async with mcp.Client(http_client(endpoint)):
                            pass
    for key in (first, second):  # the message names both, and the cure
        assert refused.group_contains(MCPError, match=re.escape(key.public.fingerprint), depth=None)
    assert refused.group_contains(MCPError, match="forget-server", depth=None)
    assert known.read_text().count("mcp-webrtc-ed25519") == 1
