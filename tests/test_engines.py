"""The two engines side by side: they interoperate both ways, and each is chosen as told."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import anyio
import pytest

from mcp_webrtc import ConfigurationError, WebRTCOptions, engines

from .support import memory_pair, options, payload, text_of

pytestmark = pytest.mark.skipif(
    not engines.libwebrtc_available(), reason="libwebrtc (wrtc) is not installed"
)

ROOT = Path(__file__).resolve().parent.parent
MiB = 1024 * 1024


@pytest.mark.anyio
@pytest.mark.core
@pytest.mark.parametrize(
    ("server", "client"), [("aiortc", "libwebrtc"), ("libwebrtc", "aiortc")], ids=["a2l", "l2a"]
)
async def test_aiortc_and_libwebrtc_interoperate_both_ways(server: str, client: str) -> None:
    data = payload(3 * MiB, seed=9)  # chunked, each way, incompressible (sent plain)
    text = '{"k":"' + "abc" * MiB + '"}'  # compressible (deflated)
    async with memory_pair(
        server_options=options(engine=server), client_options=options(engine=client)
    ) as (session, transport):
        digest = text_of(await session.call_tool("digest", {"data": data}))
        assert digest == f"{hashlib.sha256(data.encode()).hexdigest()}:{len(data)}"
        assert text_of(await session.call_tool("echo", {"data": text})) == text
        assert text_of(await session.call_tool("blob", {"size": len(data), "seed": 9})) == data
        info = transport.connection_info()
        assert info.engine == client
        assert info.peer_chunking
        assert info.compression


def test_auto_picks_libwebrtc_when_installed_and_names_are_checked() -> None:
    assert engines.resolve("auto") == "libwebrtc"
    assert engines.resolve("aiortc") == "aiortc"
    with pytest.raises(ConfigurationError, match="engine"):
        WebRTCOptions(engine="chrome")  # type: ignore[arg-type]


def fresh_process(script: str) -> subprocess.CompletedProcess[str]:
    """Run ``script`` in a new Python process: wrtc's loopback choice is per process."""
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT / "src")}
    return subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, env=env
    )


def test_loopback_asked_too_late_is_a_clear_error() -> None:
    """libwebrtc gathers loopback only when allowed before the process's first connection:
    asking later must say so rather than silently gather nothing."""
    script = (
        "import asyncio, os\n"
        "os.environ.pop('WRTC_ALLOW_LOOPBACK', None)\n"
        "from mcp_webrtc import LOOPBACK_ONLY, WebRTCOptions, MemorySignaling\n"
        "from mcp_webrtc.peer import DataChannelPeer\n"
        "import webrtc\n"
        "async def main():\n"
        "    webrtc.RTCPeerConnection(webrtc.RTCConfiguration()).close()  # a first one\n"
        "    opts = WebRTCOptions(engine='libwebrtc', host_candidates=LOOPBACK_ONLY,\n"
        "                         connect_timeout=2)\n"
        "    a, b = MemorySignaling.create_pair()\n"
        "    try:\n"
        "        async with DataChannelPeer(a, opts, initiator=True):\n"
        "            pass\n"
        "    except Exception as exc:\n"
        "        print(type(exc).__name__, exc)\n"
        "asyncio.run(main())\n"
    )
    done = fresh_process(script)
    assert "ConfigurationError" in done.stdout, done.stdout + done.stderr
    assert "before the process's first connection" in done.stdout


def test_loopback_allowed_in_the_environment_after_wrtc_was_imported_still_works() -> None:
    """Regression: the mcp-webrtc command imports wrtc before it loads the app; an app that
    set WRTC_ALLOW_LOOPBACK=1 then (too late for wrtc) made the engine skip its own
    allow_loopback(), and the peers found no candidate at all."""
    script = (
        "import anyio, os\n"
        "os.environ.pop('WRTC_ALLOW_LOOPBACK', None)\n"
        "import webrtc  # imported first, as the mcp-webrtc command does\n"
        "os.environ['WRTC_ALLOW_LOOPBACK'] = '1'  # then set, as an app module may\n"
        "from mcp_webrtc import LOOPBACK_ONLY, WebRTCOptions, MemorySignaling\n"
        "from mcp_webrtc.peer import DataChannelPeer\n"
        "opts = WebRTCOptions(engine='libwebrtc', host_candidates=LOOPBACK_ONLY,\n"
        "                     connect_timeout=10)\n"
        "async def side(signaling, initiator, opened):\n"
        "    async with DataChannelPeer(signaling, opts, initiator=initiator):\n"
        "        opened.append(initiator)\n"
        "        await anyio.sleep(0.2)\n"
        "async def main():\n"
        "    a, b = MemorySignaling.create_pair()\n"
        "    opened = []\n"
        "    async with anyio.create_task_group() as tg:\n"
        "        tg.start_soon(side, a, True, opened)\n"
        "        tg.start_soon(side, b, False, opened)\n"
        "    print('opened', sorted(opened))\n"
        "anyio.run(main)\n"
    )
    done = fresh_process(script)
    assert "opened [False, True]" in done.stdout, done.stdout + done.stderr[-2000:]


@pytest.mark.anyio
async def test_libwebrtc_trickles_candidates_and_connects_through_a_rendezvous() -> None:
    from mcp_webrtc.serve import connect

    from .support import mcp_client, rendezvous, serving

    async with rendezvous("h") as server, serving(server.url, "h", "c"):
        transport = connect(server.url, room="lab", token="c", options=options(engine="libwebrtc"))
        with anyio.fail_after(30):
            async with mcp_client(transport) as session:
                assert text_of(await session.call_tool("greet", {"name": "x"})) == "Hello, x!"
                assert transport.connection_info().engine == "libwebrtc"
