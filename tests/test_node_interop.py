"""Interop with the seed's own stack: simple-peer + @roamhq/wrtc + the TypeScript MCP SDK,
and our JS module as an npm package in Node, under the seed's names.

The simple-peer side (tests/node/*.mjs, lockfile there) relays simple-peer's signal objects
unchanged through our rendezvous and sends one JSON-RPC message per data-channel message,
as the TypeScript seed does. It knows nothing of chunk frames. tests/node also depends on
this repository's own npm package (``"mcp-webrtc": "file:../.."``): seed.test.mjs and
seed_client.mjs import it by name.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
import tomllib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest

from mcp_webrtc import Identity, MessageTooLargeError
from mcp_webrtc.serve import connect

from .support import (
    make_server,
    mcp_client,
    options,
    payload,
    rendezvous,
    serve_args,
    serving,
    text_of,
    wait_registered,
)

pytestmark = pytest.mark.anyio

NODE_DIR = Path(__file__).resolve().parent / "node"
ROOT = NODE_DIR.parent.parent
ASSETS = ROOT / "src/mcp_webrtc/assets"
#: mcp-webrtc.js, the entry point, and the parts it re-exports from (mcp-webrtc/*.js).
MODULE_FILES = [ASSETS / "mcp-webrtc.js", *sorted((ASSETS / "mcp-webrtc").glob("*.js"))]
DECLARATIONS = ASSETS / "mcp-webrtc.d.ts"
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
    module = MODULE_FILES[0].as_uri()
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
    import mcp_webrtc

    module = "\n".join(path.read_text() for path in MODULE_FILES)
    assert re.findall(r'export const VERSION = "([^"]+)"', module) == [mcp_webrtc.__version__]
    assert module.count(f'"{mcp_webrtc.__version__}"') == 1, "written once, used by name"
    package = json.loads((ROOT / "package.json").read_text())
    assert package["version"] == mcp_webrtc.__version__
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert package["license"] == project["license"]
    assert package["name"] == "mcp-webrtc"
    assert package["type"] == "module"
    entry = "./src/mcp_webrtc/assets/mcp-webrtc.js"
    assert package["main"] == package["exports"]["."]["default"] == entry
    types = "./src/mcp_webrtc/assets/mcp-webrtc.d.ts"
    assert package["types"] == package["exports"]["."]["types"] == types


@pytest.mark.engines("aiortc", reason="npm only: no WebRTC peer")
def test_the_npm_package_holds_only_the_module_and_installs_from_the_repository(
    tmp_path: Path,
) -> None:
    """`npm pack` takes package.json, the README, the module (its entry and every part) and
    its declarations, nothing else; `npm install --install-links <repo>` (a packed copy, as
    from a registry) gives the seed's names."""
    packed = subprocess.run(
        ["npm", "pack", "--dry-run", "--json", "--loglevel=error"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    files = {entry["path"] for entry in json.loads(packed.stdout)[0]["files"]}
    module = {path.relative_to(ROOT).as_posix() for path in [*MODULE_FILES, DECLARATIONS]}
    assert files == {"package.json", "README.md", *module}

    (tmp_path / "package.json").write_text('{"name": "probe", "private": true}')
    install = ["npm", "install", "--install-links", "--offline", "--no-audit", "--no-fund"]
    subprocess.run([*install, str(ROOT)], cwd=tmp_path, capture_output=True, timeout=60, check=True)
    assert not (tmp_path / "node_modules/mcp-webrtc").is_symlink(), "a copy, not a link"
    script = (
        "import * as m from 'mcp-webrtc';"
        "const names = ['BaseSignaling', 'MemorySignaling', 'WebRTCClientTransport',"
        " 'WebRTCServerTransport', 'WebRTCTransport', 'RendezvousSignaling', 'VERSION'];"
        "console.log(JSON.stringify([m.VERSION, names.filter((n) => !(n in m)),"
        " typeof m.MemorySignaling.createMemorySignalingPair]));"
    )
    done = subprocess.run(
        ["node", "--input-type=module", "-e", script],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    import mcp_webrtc

    assert json.loads(done.stdout) == [mcp_webrtc.__version__, [], "function"]


#: How the declarations are checked: as a strict TypeScript project using Node's ES modules
#: would. --preserveSymlinks: tests/node links the package (file:../..), so its
#: declarations' imports (the MCP SDK's types) resolve from tests/node/node_modules, as in a
#: copy installed from a registry.
TSC = [
    "node_modules/.bin/tsc",
    "--noEmit",
    "--strict",
    "--module",
    "nodenext",
    "--moduleResolution",
    "nodenext",
    "--preserveSymlinks",
]


@pytest.mark.engines("aiortc", reason="type checks only: no WebRTC peer")
def test_the_declarations_type_check_the_seed_readme_example() -> None:
    """mcp-webrtc.d.ts against the seed's README example (a TypeScript twin of
    seed-readme-example.mjs, importing "mcp-webrtc") and types.mts (the rest of the API,
    with expected errors where the declarations must be precise); any type error fails.
    types.mts also checks the declarations themselves (no --skipLibCheck); the README
    example needs --skipLibCheck only because @roamhq/wrtc's own declarations do not
    compile (TS2661: "Only local declarations can be exported from a module")."""
    for command in [[*TSC, "types.mts"], [*TSC, "--skipLibCheck", "seed-readme-example.mts"]]:
        done = subprocess.run(command, cwd=NODE_DIR, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    readme = (NODE_DIR / "seed-readme-example.mjs").read_text().splitlines()[2:]
    twin = (NODE_DIR / "seed-readme-example.mts").read_text().splitlines()[3:]
    assert twin == readme, "the TypeScript twin is the same example"


def test_the_declarations_name_every_export() -> None:
    """Every name the module exports is declared in mcp-webrtc.d.ts, and no other value."""
    declared = set(
        re.findall(
            r"^export declare (?:abstract )?(?:const|function|class) (\w+)",
            DECLARATIONS.read_text(),
            re.MULTILINE,
        )
    )
    script = (
        f"const m = await import({json.dumps(MODULE_FILES[0].as_uri())});"
        "console.log(JSON.stringify(Object.keys(m)));"
    )
    done = subprocess.run(
        ["node", "--input-type=module", "-e", script], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert declared == set(json.loads(done.stdout))


#: Tests of tests/node/seed.test.mjs that must have passed (a renamed test fails here).
SEED_NODE_TESTS = {
    "the package name resolves to this repository's module",
    "the seed's README example, copied verbatim, lists its tool",
    "5 MiB result and 5 MiB argument, Node to Node, byte-exact",
    "a plain seed peer (simple-peer, one message per data-channel message) serves our client",
    "no server: client.connect() rejects with the transport's cause",
    "ICE servers: none unless given; peerOptions.config is honoured as simple-peer does",
}


@pytest.mark.engines("aiortc", reason="Node to Node: no Python peer, the engine does not apply")
def test_the_seed_api_in_node() -> None:
    """tests/node/seed.test.mjs (node:test, real @roamhq/wrtc peers): the seed's README
    example copied verbatim lists its tool; the same shape moves a 5 MiB result and a
    5 MiB argument byte-exact; a plain simple-peer server; failures and ICE options."""
    done = subprocess.run(
        ["node", "--test", "--test-reporter=tap", "seed.test.mjs"],
        cwd=NODE_DIR,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "# fail 0" in done.stdout
    passed = set(re.findall(r"^ok \d+ - (.+)$", done.stdout, re.MULTILINE))
    assert passed >= SEED_NODE_TESTS, done.stdout[-4000:]
    print(*re.findall(r"^# 5 MiB .*$", done.stdout, re.MULTILINE), sep="\n")


async def test_the_seed_client_api_moves_5_mib_each_way_with_a_python_server() -> None:
    """Node (WebRTCClientTransport + RendezvousSignaling over ws, @roamhq/wrtc, the SDK's
    Client) against `mcp-webrtc serve --app tests.app:SERVER`: the tool list, then a 5 MiB
    argument (the server's digest of it) and a 5 MiB result (blob), byte-exact."""
    size = 5 * 1024 * 1024
    async with rendezvous(HOST_TOKEN) as server:
        args = serve_args(server.url, HOST_TOKEN, CLIENT_TOKEN, "--app", "tests.app:SERVER")
        host = await anyio.open_process(
            [sys.executable, "-m", "mcp_webrtc", *args], cwd=ROOT, stdout=None, stderr=None
        )
        try:
            await wait_registered(server)
            command = ["node", "seed_client.mjs", server.url, "lab", CLIENT_TOKEN, str(size)]
            with anyio.fail_after(120):
                done = await anyio.run_process(command, cwd=NODE_DIR, check=False)
        finally:
            host.terminate()
            with anyio.fail_after(15):
                await host.wait()
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    seen: dict[str, Any] = json.loads(done.stdout.decode().strip().splitlines()[-1])
    assert {"echo", "digest", "blob"} <= set(seen["tools"])
    assert seen["chunking"] is True, "the Python side announces the chunk framing"
    sent = seen["argument"]
    assert sent["length"] == size
    assert sent["digest"] == f"{sent['sha256']}:{size}", "the server got the argument intact"
    got = seen["result"]
    assert got["length"] == size
    assert got["sha256"] == hashlib.sha256(payload(size, seed=7).encode()).hexdigest()
    print(f"5 MiB argument: {sent['ms']} ms, 5 MiB result: {got['ms']} ms")
