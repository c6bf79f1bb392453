"""Interop with the seed's own stack: simple-peer + @roamhq/wrtc + the TypeScript MCP SDK.

The Node side (tests/node/*.mjs, lockfile there) relays simple-peer's signal objects
unchanged through our rendezvous and sends one JSON-RPC message per data-channel message,
as the TypeScript seed does. It knows nothing of chunk frames.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest

from mcp_webrtc import Identity, MessageTooLargeError
from mcp_webrtc.serve import connect

from .support import make_server, mcp_client, options, payload, rendezvous, serving, text_of

pytestmark = pytest.mark.anyio

NODE_DIR = Path(__file__).resolve().parent / "node"
HOST_TOKEN, CLIENT_TOKEN = "node-host", "node-client"


@pytest.mark.parametrize("signed", [False, True], ids=["plain", "server-with-identity"])
async def test_node_sdk_client_calls_a_python_server(signed: bool) -> None:
    """simple-peer with the TypeScript SDK; a server that signs its descriptions (§8) is
    still reached by this plain peer, which ignores the identity fields."""
    served = options(identity=Identity.generate() if signed else None)
    async with (
        rendezvous(HOST_TOKEN) as server,
        serving(server.url, HOST_TOKEN, CLIENT_TOKEN, make_server("python"), options=served),
    ):
        with anyio.fail_after(60):
            done = await anyio.run_process(
                ["node", "client.mjs", server.url, "lab", CLIENT_TOKEN], cwd=NODE_DIR, check=False
            )
        assert done.returncode == 0, done.stderr.decode()[-2000:]
        seen: dict[str, Any] = json.loads(done.stdout.decode().strip().splitlines()[-1])
    assert {"greet", "echo"} <= set(seen["tools"])
    assert seen["greet"] == "Hello, Node!"
    # 200 KiB both ways (argument and result), byte-exact, each one plain message
    assert seen["echoedLength"] == 200 * 1024
    assert seen["echoedHash"] == seen["sentHash"]


@asynccontextmanager
async def node_server(url: str) -> AsyncIterator[Any]:
    process = await anyio.open_process(
        ["node", "server.mjs", url, "node", HOST_TOKEN, CLIENT_TOKEN], cwd=NODE_DIR
    )
    try:
        assert process.stdout is not None
        with anyio.fail_after(30):
            line = await process.stdout.receive()
        assert b"ready" in line
        yield process
    finally:
        process.kill()
        await process.wait()


async def test_python_client_calls_a_node_sdk_server() -> None:
    async with rendezvous(HOST_TOKEN) as server, node_server(server.url):
        transport = connect(server.url, room="node", token=CLIENT_TOKEN, options=options())
        async with mcp_client(transport) as client:
            tools = {t.name for t in (await client.list_tools()).tools}
            assert tools == {"add", "echo"}
            assert text_of(await client.call_tool("add", {"a": 40, "b": 2})) == "42"
            data = payload(200 * 1024, seed=9)
            echoed = text_of(await client.call_tool("echo", {"data": data}))
            assert (
                hashlib.sha256(echoed.encode()).digest() == hashlib.sha256(data.encode()).digest()
            )
            info = transport.connection_info()
            assert not info.peer_chunking  # a plain peer: no capability line in its SDP
            assert info.peer_max_message_size == 262144
            # 1 MiB cannot go to a peer that cannot reassemble chunks: a clear local error
            with anyio.fail_after(10), pytest.raises(MessageTooLargeError) as too_large:
                await client.call_tool("echo", {"data": payload(1024 * 1024)})
            assert "does not reassemble chunked messages" in str(too_large.value)
            # and the session goes on
            assert text_of(await client.call_tool("add", {"a": 1, "b": 2})) == "3"


def test_javascript_module_against_the_protocol_spec() -> None:
    """mcp-webrtc.js checked against docs/protocol.md's vectors (node:test)."""
    import subprocess

    done = subprocess.run(
        ["node", "--test", str(NODE_DIR / "spec.test.mjs")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "# fail 0" in done.stdout


def test_javascript_sniffer_agrees_with_python_on_crafted_input(tmp_path: Path) -> None:
    """Both sides read a too-large request's id the same way (docs/protocol.md §5)."""
    import random
    import subprocess

    from mcp_webrtc._core.jsonrpc import sniff_request_id

    from .test_protocol_spec import _crafted_message

    rng = random.Random(21)
    heads = []
    for _ in range(5000):
        text = _crafted_message(rng)
        heads += [text, text[: rng.randint(0, len(text))]]
    (tmp_path / "heads.json").write_text(json.dumps(heads))
    module = (NODE_DIR.parent.parent / "src/mcp_webrtc/assets/mcp-webrtc.js").as_uri()
    script = (
        f"import {{ sniffRequestId }} from {json.dumps(module)};"
        "import { readFileSync } from 'node:fs';"
        "const heads = JSON.parse(readFileSync(process.argv[1], 'utf8'));"
        "console.log(JSON.stringify(heads.map((h) => sniffRequestId(h))));"
    )
    done = subprocess.run(
        ["node", "--input-type=module", "-e", script, str(tmp_path / "heads.json")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    found = json.loads(done.stdout)
    for head, js in zip(heads, found, strict=True):
        assert js == sniff_request_id(head.encode()), head


def test_the_javascript_module_has_the_package_version() -> None:
    import re

    import mcp_webrtc

    module = (NODE_DIR.parent.parent / "src/mcp_webrtc/assets/mcp-webrtc.js").read_text()
    assert re.findall(r'export const VERSION = "([^"]+)"', module) == [mcp_webrtc.__version__]
    assert module.count(f'"{mcp_webrtc.__version__}"') == 1, "written once, used by name"
