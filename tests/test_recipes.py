"""The README's desktop-assistant recipes, run as written: the configuration a desktop
assistant reads (stdio: the command it starts; HTTP: the URL it posts to) and the
command a user runs, with only the rendezvous URL, token file, room and port replaced.
The test namespace has no network interface but loopback, which a real machine gathers
candidates from only when asked: the environment asks (MCP_WEBRTC_HOST_CANDIDATES)."""

from __future__ import annotations

import json
import os
import re
import shlex
import sys
from pathlib import Path
from typing import Any

import anyio
import mcp
import pytest
from mcp import StdioServerParameters
from mcp.client.stdio import stdio_client

from . import support
from .test_bridges import CLIENT_TOKEN, ROOT, Raw, rendezvous, serve_process

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.skipif(not support.MCP2, reason="drives mcp 2.x's Client"),
]

README = ROOT / "README.md"
COMMAND = Path(sys.executable).parent / "mcp-webrtc"  # the console script pip installed
#: What the namespace needs beyond the recipe (see the module docstring).
ENV = {
    "MCP_WEBRTC_HOST_CANDIDATES": "loopback",
    "MCP_WEBRTC_ENGINE": support.ENGINE,
    "WRTC_ALLOW_LOOPBACK": "1",
}


def recipe(name: str) -> str:
    """The fenced block after ``<!-- recipe: name -->`` in the README."""
    found = re.search(rf"<!-- recipe: {name} -->\n```\w*\n(.*?)```", README.read_text(), re.S)
    assert found, f"no recipe {name!r} in the README"
    return found.group(1)


def adapted(args: list[str], url: str, token_file: Path) -> list[str]:
    """The recipe's arguments for this test's rendezvous, room and token file."""
    out = [url if arg.startswith("wss://") else arg for arg in args]
    out[out.index("--room") + 1] = "lab"
    out[out.index("--token-file") + 1] = str(token_file)
    return out


async def called(client: Any) -> tuple[list[str], str]:
    tools = sorted(tool.name for tool in (await client.list_tools()).tools)
    greeting = support.text_of(await client.call_tool("greet", {"name": "recipe"}))
    return tools, greeting


async def test_the_stdio_recipe(tmp_path: Path) -> None:
    config = json.loads(recipe("stdio"))
    (entry,) = config["mcpServers"].values()
    assert entry["command"] == "mcp-webrtc"
    token_file = tmp_path / "laptop.token"
    token_file.write_text(CLIENT_TOKEN + "\n")
    async with rendezvous() as rdv, serve_process(rdv.url):
        await support.wait_registered(rdv)
        args = adapted(entry["args"], rdv.url, token_file)
        params = StdioServerParameters(command=str(COMMAND), args=args, env=ENV)
        with anyio.fail_after(60):
            async with mcp.Client(stdio_client(params)) as client:
                tools, greeting = await called(client)
    assert "greet" in tools
    assert greeting == "Hello, recipe!"


async def test_the_http_recipe(tmp_path: Path) -> None:
    from mcp.client.streamable_http import streamable_http_client

    words = shlex.split(recipe("http").replace("\\\n", " "))
    assert words[:2] == ["mcp-webrtc", "connect"]
    config = json.loads(recipe("http-config"))
    (entry,) = config["mcpServers"].values()
    assert entry["type"] == "http"
    listen = words[words.index("--listen") + 1]
    assert entry["url"] == f"http://{listen}/mcp"  # the entry names what connect serves
    port = support.free_port()
    token_file = tmp_path / "laptop.token"
    token_file.write_text(CLIENT_TOKEN + "\n")
    async with rendezvous() as rdv, serve_process(rdv.url):
        await support.wait_registered(rdv)
        args = adapted(words[1:], rdv.url, token_file)
        args[args.index("--listen") + 1] = f"127.0.0.1:{port}"
        proc = await anyio.open_process([str(COMMAND), *args], env={**os.environ, **ENV})
        raw = Raw(proc)
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(raw.read_stderr)
                await raw.stderr_until("listening at")
                url = entry["url"].replace(listen, f"127.0.0.1:{port}")
                with anyio.fail_after(60):
                    async with mcp.Client(streamable_http_client(url)) as client:
                        tools, greeting = await called(client)
                proc.terminate()
                assert await raw.exit_status() == 0
        finally:
            if proc.returncode is None:
                proc.kill()
            await proc.aclose()
    assert "greet" in tools
    assert greeting == "Hello, recipe!"
