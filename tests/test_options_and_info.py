"""Options validation, the documented options table, connection info, cancelled sends."""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import re
import time
from pathlib import Path
from typing import Any, cast

import anyio
import pytest

from mcp_webrtc import (
    ConfigurationError,
    IceServer,
    MemorySignaling,
    PeerGoneError,
    WebRTCOptions,
    WebRTCServerTransport,
)
from mcp_webrtc.engines import Engine, PathInfo
from mcp_webrtc.engines.aiortc import configuration as _ice_configuration
from mcp_webrtc.liveness import Liveness
from mcp_webrtc.peer import open_peer

from .support import fake_peer, memory_pair, options, payload, wait_until

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    "bad",
    [
        {"connect_timeout": 0},
        {"dead_peer_timeout": -1},
        {"max_message_size": 10},
        {"chunk_size": 300_000},
        {"send_low_watermark": 10, "send_high_watermark": 5},
        {"ice_transport_policy": "none"},
        {"host_candidates": ("10.0.0.0/33x/",)},
        {"udp_receive_buffer": -1},
    ],
)
def test_invalid_options_are_refused_clearly(bad: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        WebRTCOptions(**bad)


def test_ice_servers_need_known_schemes_and_turn_credentials() -> None:
    with pytest.raises(ConfigurationError, match="unknown scheme"):
        IceServer("http://example.invalid")
    with pytest.raises(ConfigurationError, match="needs username"):
        IceServer("turn:127.0.0.1:3478")
    server = IceServer(("stun:127.0.0.1:3478", "turn:127.0.0.1:3478"), "u", "p")
    assert server.url_list == ("stun:127.0.0.1:3478", "turn:127.0.0.1:3478")


def test_no_ice_server_unless_configured() -> None:
    """aiortc would use Google's STUN server for iceServers=None; we always pass a list."""
    config = _ice_configuration(WebRTCOptions(), ())
    assert config.iceServers == []


def test_more_than_one_stun_or_turn_server_warns(caplog: pytest.LogCaptureFixture) -> None:
    servers = (
        IceServer("stun:127.0.0.1:3478"),
        IceServer("stun:127.0.0.1:3479"),
        IceServer("turn:127.0.0.1:3478", "u", "p"),
    )
    _ice_configuration(WebRTCOptions(ice_servers=servers), servers)
    assert "only the first STUN server" in caplog.text
    assert "TURN" not in caplog.text.split("only the first")[-1].split("\n")[0]


def test_readme_documents_every_option() -> None:
    readme = (ROOT / "README.md").read_text()
    documented = set(re.findall(r"^\| `(\w+)` \|", readme, re.M))
    fields = {f.name for f in dataclasses.fields(WebRTCOptions)}
    assert fields <= documented, fields - documented


pytestmark_async = pytest.mark.anyio


@pytest.mark.anyio
@pytest.mark.core
async def test_connection_info_reports_pair_rtt_and_counts(engine: str) -> None:
    async with memory_pair(client_options=options(dead_peer_timeout=1.0)) as (client, transport):
        await client.call_tool("greet", {"name": "x"})
        info = transport.connection_info()
        assert info.local_candidate_type == "host"
        assert info.remote_candidate_type == "host"
        assert info.local_address is not None
        assert ipaddress.ip_address(info.local_address[0]).is_loopback  # (aioice: 127.0.0.2)
        assert info.protocol == "udp"
        assert info.peer_chunking
        assert info.compression
        assert info.peer_max_message_size == 128 * 1024 * 1024
        assert info.messages_sent >= 3  # initialize, initialized, list/call
        assert info.bytes_received > 0
        assert len(info.channel_label) == 40
        assert info.engine == engine
        # ICE checks measure the RTT (libwebrtc reports whole milliseconds: 0 on loopback)
        await wait_until(lambda: transport.connection_info().rtt is not None)
        rtt = transport.connection_info().rtt
        assert rtt is not None
        assert rtt >= 0


@pytest.mark.anyio
async def test_a_busy_peer_is_not_probed_a_quiet_one_is() -> None:
    """Regression: each busy peer was probed every five intervals; a libwebrtc probe is a
    stats report, whose Python cost grows with the process's connections, and at 200 peers
    they took a fifth of a host's CPU. A busy peer's data proves it alive: its engine is
    asked only to refresh the path (every 30 s); a quiet one's is asked at once."""

    class CountingEngine:
        probes = 0

        async def probe(self) -> tuple[float, PathInfo]:
            self.probes += 1
            return time.monotonic(), PathInfo(None, None, None)

    liveness = Liveness(timeout=1.0)  # ticks every 0.1 s; quiet after 0.2 s
    engine = CountingEngine()
    async with anyio.create_task_group() as tg:
        tg.start_soon(liveness.watch, cast(Engine, engine), lambda: False)
        for _ in range(40):  # 2 s of traffic, 20 messages a second
            liveness.heard()
            await anyio.sleep(0.05)
        busy = engine.probes
        await wait_until(lambda: engine.probes > busy)  # then quiet: the engine is asked
        tg.cancel_scope.cancel()
    assert busy <= 1  # (one only if this process stalled for 0.2 s)


@pytest.mark.anyio
@pytest.mark.core
async def test_interface_name_in_host_candidates() -> None:
    import aioice.ice

    untouched = aioice.ice.get_host_addresses
    by_name = options(host_candidates=("lo",))
    async with memory_pair(server_options=by_name, client_options=by_name) as (client, transport):
        await client.call_tool("greet", {"name": "x"})
        assert transport.connection_info().local_address is not None
    # the filter patches aioice only while gathering: other users of aioice see it as it was
    assert aioice.ice.get_host_addresses is untouched


@pytest.mark.anyio
@pytest.mark.core
async def test_unknown_interface_is_a_configuration_error() -> None:
    a, _ = MemorySignaling.create_pair()
    with pytest.raises(ConfigurationError, match="no network interface"):
        async with WebRTCServerTransport(a, options(host_candidates=("nosuch0",))):
            pass


@pytest.mark.anyio
@pytest.mark.core
async def test_cancelled_large_send_is_withdrawn_and_the_receiver_frees_it() -> None:
    a, b = MemorySignaling.create_pair()
    receivers: list[Any] = []
    async with anyio.create_task_group() as tg:

        async def receiver() -> None:
            async with open_peer(a, options(), initiator=True) as peer:
                receivers.append(peer)
                async for message in peer:
                    assert message == "after"  # the cancelled message never arrives
                    return

        tg.start_soon(receiver)
        async with open_peer(b, options(compression=False), initiator=False) as sender:
            with anyio.move_on_after(5) as scope:
                async with anyio.create_task_group() as sending:
                    sending.start_soon(sender.send, payload(8 * 1024 * 1024))
                    await wait_until(lambda: bool(receivers) and receivers[0].partial_bytes > 0)
                    sending.cancel_scope.cancel()
            assert not scope.cancelled_caught
            await wait_until(lambda: receivers[0].partial_bytes == 0)
            await sender.send("after")


@pytest.mark.anyio
async def test_a_withdrawn_message_leaves_no_frame_behind_its_abort() -> None:
    """Regression: the sender used to take a frame, then wait for the channel to drain;
    a send cancelled meanwhile got its ABORT out first and the stale frame after it."""
    async with fake_peer() as (peer, engine):
        engine.buffered = 10**9  # congested
        async with anyio.create_task_group() as sending:
            sending.start_soon(peer.send, payload(200_000))
            await wait_until(lambda: peer.frames_waiting)
            await anyio.sleep(0.05)  # give a (buggy) sender the chance to take a frame
            sending.cancel_scope.cancel()
        engine.drain()
        await peer.send("{}")
        assert engine.frames == ["{}"]  # nothing of the withdrawn message, no ABORT needed


@pytest.mark.anyio
async def test_a_message_the_channel_never_took_is_reported_as_not_sent() -> None:
    """Regression: a message taken by the sender but not handed over when the channel
    closed counted as sent; now send() raises PeerGoneError."""
    failure: list[BaseException] = []
    async with fake_peer() as (peer, engine):
        engine.buffered = 10**9

        async def send() -> None:
            try:
                await peer.send('{"jsonrpc":"2.0","method":"x"}')
            except PeerGoneError as exc:
                failure.append(exc)

        async with anyio.create_task_group() as tg:
            tg.start_soon(send)
            await wait_until(lambda: peer.frames_waiting)
            await anyio.sleep(0.05)
            engine.close_channel()
        assert engine.frames == []
    assert failure, "send() must not report success"


async def grows(items: list[int], within: float) -> bool:
    """Whether ``items`` gets longer within ``within`` seconds."""
    before = len(items)
    with anyio.move_on_after(within):
        await wait_until(lambda: len(items) > before, limit=within + 1)
        return True
    return False


@pytest.mark.anyio
@pytest.mark.core
@pytest.mark.engines(
    "aiortc", reason="libwebrtc's API delivers every message as it arrives: no receive flow control"
)
async def test_a_slow_reader_holds_back_a_fast_sender() -> None:
    """Regression: complete messages queued without bound for a reader that lags, so a fast
    sender grew the receiver's memory without limit. Now the receiver stops taking data
    from the channel above max_receive_queue and the sender's sends wait."""
    a, b = MemorySignaling.create_pair()
    size, count, bound = 256 * 1024, 60, 1024 * 1024
    sent: list[int] = []

    async def sender() -> None:
        async with open_peer(b, options(), initiator=False) as writer:
            for i in range(count):
                await writer.send(json.dumps({"i": i, "pad": payload(size, i)}))  # incompressible
                sent.append(i)
            await writer.wait_gone()

    with anyio.fail_after(60):
        async with anyio.create_task_group() as tg:
            tg.start_soon(sender)
            async with open_peer(a, options(max_receive_queue=bound), initiator=True) as reader:
                # the sender stops making progress long before it sent everything ...
                await wait_until(lambda: len(sent) >= 4)
                while await grows(sent, within=1.0):  # until no send completes for a second
                    pass
                assert len(sent) * size < bound + 4 * 1024 * 1024, len(sent)
                assert len(sent) < count
                # ... and once the reader reads, every message arrives, in order
                for i in range(count):
                    assert json.loads(await reader.receive())["i"] == i
                await wait_until(lambda: len(sent) == count)


@pytest.mark.anyio
@pytest.mark.engines(
    "aiortc",
    reason="leaves consent checks unanswered inside aioice; libwebrtc's liveness counts "
    "every packet, from its own stats",
)
async def test_a_peer_too_busy_to_answer_consent_checks_is_not_declared_dead(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Regression: a client receiving large results answers ICE consent checks late (its
    socket buffer holds seconds of data ahead of each check). The sending side counted
    nothing else as a sign of life, not even the client's acknowledgements, and declared it
    dead mid-transfer: one call in four failed in a five-client 8 MiB test."""
    import aioice.ice

    from .support import text_of

    size = 24 * 1024 * 1024  # incompressible: a few dead-peer timeouts to send here
    patient = options(dead_peer_timeout=1.0)
    async with memory_pair(server_options=patient, client_options=patient) as (client, _):
        # from now on no consent check is answered, on either side: only traffic counts
        monkeypatch.setattr(aioice.ice.Connection, "request_received", lambda *args: None)
        with anyio.fail_after(60):
            result = await client.call_tool("blob", {"size": size, "seed": 4})
        assert text_of(result) == payload(size, 4)
