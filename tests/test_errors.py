"""Bad input and failures: clear errors, nothing lost, the session lives on."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import pytest

from mcp_webrtc import (
    ConnectError,
    ConnectFailureReason,
    ConnectTimeoutError,
    MemorySignaling,
    MessageTooLargeError,
    WebRTCClientTransport,
    WebRTCServerTransport,
    run_server,
)
from mcp_webrtc._core import framing
from mcp_webrtc.peer import DataChannelPeer, open_peer

from .support import (
    MCPError,
    make_server,
    memory_pair,
    options,
    payload,
    split_candidates,
    text_of,
    wait_until,
)

pytestmark = [pytest.mark.anyio, pytest.mark.core]


@asynccontextmanager
async def raw_client(**server_options: Any) -> AsyncIterator[DataChannelPeer]:
    """A real MCP server, and a raw peer on the client side that sends frames by hand."""
    a, b = MemorySignaling.create_pair()
    async with anyio.create_task_group() as tg:
        tg.start_soon(
            run_server, make_server(), WebRTCServerTransport(a, options(**server_options))
        )
        async with open_peer(b, options(), initiator=False) as peer:
            yield peer


async def next_json(peer: DataChannelPeer) -> Any:
    with anyio.fail_after(10):
        return json.loads(await peer.receive())


PING = json.dumps({"jsonrpc": "2.0", "id": "alive", "method": "ping"})


async def assert_alive(peer: DataChannelPeer) -> None:
    await peer.send(PING)
    answer = await next_json(peer)
    assert answer["id"] == "alive", answer
    assert answer["result"] == {}, answer


async def test_malformed_frames_get_parse_errors_and_session_continues() -> None:
    async with raw_client() as peer:
        await assert_alive(peer)
        cases: list[str | bytes] = [
            "this is not json",
            b"\x7fgarbage",  # unknown frame type
            framing.next_frame(77, b"orphan"),  # NEXT for a message never started
            b"\x01\x00",  # FIRST shorter than its header
            b'{"jsonrpc": "2.0", "id": 3, "method": "ping"',  # truncated JSON in binary
        ]
        for frame in cases:
            assert peer.send_frame(frame)
            answer = await next_json(peer)
            assert answer["error"]["code"] == -32700, (frame, answer)
            assert answer["id"] is None
            await assert_alive(peer)


async def test_hostile_input_is_answered_and_the_session_lives() -> None:
    """Regressions: each of these used to end the session (see the comments)."""
    async with raw_client(max_message_size=64 * 1024) as peer:
        # an oversize FIRST_DEFLATE whose data is not DEFLATE: zlib.error escaped the
        # receive callback and aiortc closed the DTLS transport
        assert peer.send_frame(framing.first_frame(7, 10**6, b"\xff\xff\xff\xff", deflate=True))
        answer = await next_json(peer)
        assert answer["error"]["code"] == -32050
        await assert_alive(peer)
        # JSON nested deeper than the parsers go: RecursionError escaped the MCP pump
        assert peer.send_frame("[" * 5000 + "]" * 5000)
        answer = await next_json(peer)
        assert answer["error"]["code"] == -32700
        await assert_alive(peer)


async def test_binary_json_with_a_byte_order_mark_is_accepted() -> None:
    """docs/protocol.md §5 allows a leading BOM; pydantic refused it (-32600)."""
    async with raw_client() as peer:
        assert peer.send_frame(b"\xef\xbb\xbf" + PING.encode())
        answer = await next_json(peer)
        assert answer["id"] == "alive"
        assert answer["result"] == {}


async def test_invalid_request_is_answered_with_its_id() -> None:
    async with raw_client() as peer:
        await peer.send(json.dumps({"jsonrpc": "2.0", "id": 7, "method": 42}))
        answer = await next_json(peer)
        assert answer["id"] == 7
        assert answer["error"]["code"] == -32600
        await assert_alive(peer)


async def test_binary_frame_with_whole_json_is_accepted() -> None:
    async with raw_client() as peer:
        assert peer.send_frame(PING.encode())
        answer = await next_json(peer)
        assert answer["id"] == "alive"


async def test_incoming_oversize_is_discarded_with_an_error_answer() -> None:
    """A peer that ignores our announced limit gets -32050 for that request only."""
    limit = 64 * 1024
    async with raw_client(max_message_size=limit) as peer:
        request = json.dumps(
            {
                "jsonrpc": "2.0",
                "id": 9,
                "method": "tools/call",
                "params": {"name": "echo", "arguments": {"data": payload(200_000)}},
            }
        ).encode()
        for frame_index, start in enumerate(range(0, len(request), 16_000)):
            chunk = request[start : start + 16_000]
            frame = (
                framing.first_frame(5, len(request), chunk)
                if frame_index == 0
                else framing.next_frame(5, chunk)
            )
            assert peer.send_frame(frame)
        answer = await next_json(peer)
        assert answer["id"] == 9
        assert answer["error"]["code"] == -32050
        assert answer["error"]["data"] == {"size": len(request), "limit": limit}
        await assert_alive(peer)
        # whole-text oversize too
        assert peer.send_frame(request.decode())
        answer = await next_json(peer)
        assert (answer["id"], answer["error"]["code"]) == (9, -32050)
        await assert_alive(peer)


async def test_abort_frees_a_partial_message() -> None:
    a, b = MemorySignaling.create_pair()
    async with (
        anyio.create_task_group() as tg,
    ):
        receiver_ready: list[DataChannelPeer] = []

        async def receiver() -> None:
            async with open_peer(a, options(), initiator=True) as peer:
                receiver_ready.append(peer)
                await peer.wait_gone()

        tg.start_soon(receiver)
        async with open_peer(b, options(), initiator=False) as sender:
            assert sender.send_frame(framing.first_frame(1, 100_000, b"x" * 1000))
            assert sender.send_frame(framing.next_frame(1, b"y" * 1000))
            await wait_until(
                lambda: bool(receiver_ready) and receiver_ready[0].partial_bytes == 2000
            )
            assert sender.send_frame(framing.abort_frame(1))
            await wait_until(lambda: receiver_ready[0].partial_bytes == 0)


async def test_sending_above_own_limit_raises_and_session_continues() -> None:
    narrow = options(max_message_size=64 * 1024)
    async with memory_pair(client_options=narrow) as (client, _):
        with pytest.raises(MessageTooLargeError) as info:
            await client.call_tool("echo", {"data": payload(100_000)})
        assert info.value.limit == 64 * 1024
        assert text_of(await client.call_tool("greet", {"name": "still here"})) == (
            "Hello, still here!"
        )


async def test_result_above_peer_limit_becomes_an_error_for_the_caller() -> None:
    narrow = options(max_message_size=64 * 1024)
    async with memory_pair(client_options=narrow) as (client, _):
        with pytest.raises(MCPError) as info:
            await client.call_tool("blob", {"size": 100_000})
        assert "too large" in str(info.value).lower()
        assert text_of(await client.call_tool("greet", {"name": "ok"})) == "Hello, ok!"


async def test_unknown_signals_are_ignored_with_a_log_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    junk: list[Any] = [
        {"type": "weird"},
        {"type": "renegotiate", "renegotiate": True},
        {"type": "transceiverRequest", "transceiverRequest": {"kind": "audio"}},
        {"type": "offer"},
        ["not", "an", "object"],
    ]

    def noisy(signal: Any) -> list[Any]:
        return [*junk, signal]

    caplog.set_level(logging.WARNING, logger="mcp_webrtc")
    async with memory_pair(server_rewrite=noisy) as (client, _):
        assert text_of(await client.call_tool("greet", {"name": "x"})) == "Hello, x!"
    messages = "\n".join(r.getMessage() for r in caplog.records)
    assert "unknown type 'weird'" in messages
    assert "unknown type 'renegotiate'" in messages
    assert "offer without an sdp" in messages
    assert "not a JSON object" in messages


async def test_simple_peer_candidates_before_the_description() -> None:
    """Both sides trickle simple-peer-shaped candidates, sent before their description."""
    trickled = split_candidates
    async with memory_pair(server_rewrite=trickled, client_rewrite=trickled) as (client, transport):
        assert text_of(await client.call_tool("greet", {"name": "x"})) == "Hello, x!"
        assert transport.connection_info().remote_candidate_type == "host"


async def test_no_local_candidates_fails_with_that_reason_on_both_sides() -> None:
    a, b = MemorySignaling.create_pair()
    nowhere = options(host_candidates=("192.0.2.1/32",), connect_timeout=5.0)
    client_error: list[BaseException] = []
    with anyio.fail_after(15):
        async with anyio.create_task_group() as tg:

            async def client() -> None:
                try:
                    async with WebRTCClientTransport(b, options(connect_timeout=5.0)):
                        pass
                except ConnectError as exc:
                    client_error.append(exc)

            tg.start_soon(client)
            with pytest.raises(ConnectError) as info:
                async with WebRTCServerTransport(a, nowhere):
                    pass
    assert info.value.reason is ConnectFailureReason.NO_LOCAL_CANDIDATES
    assert "local candidates: 0" in str(info.value)
    # The client got an offer without candidates and says so at once, without waiting.
    assert client_error, "the client should fail too"
    assert getattr(client_error[0], "reason", None) is ConnectFailureReason.NO_REMOTE_CANDIDATES
    assert not isinstance(client_error[0], ConnectTimeoutError)


async def test_offer_without_candidates_to_a_silent_peer_times_out_naming_it() -> None:
    """The answerer neither answers nor leaves (a stuck peer): the timeout names the cause."""
    a, b = MemorySignaling.create_pair()
    nowhere = options(host_candidates=("192.0.2.1/32",), connect_timeout=1.0)
    with anyio.fail_after(10), pytest.raises(ConnectTimeoutError) as info:
        async with WebRTCServerTransport(a, nowhere):
            pass
    assert info.value.reason is ConnectFailureReason.NO_LOCAL_CANDIDATES
    offer = await b.receive()
    assert offer is not None
    assert offer["type"] == "offer"
    assert "a=candidate" not in offer["sdp"]


async def test_nobody_answers_times_out_naming_signaling() -> None:
    a, _b = MemorySignaling.create_pair()
    with anyio.fail_after(10), pytest.raises(ConnectTimeoutError) as info:
        async with WebRTCServerTransport(a, options(connect_timeout=1.0)):
            pass
    assert info.value.reason is ConnectFailureReason.NO_REMOTE_DESCRIPTION


async def test_a_flood_of_bad_frames_gets_bounded_answers(caplog: Any) -> None:
    """Each bad frame used to be answered: a peer could make us flood it without limit."""
    async with raw_client() as peer:
        sent = 1000
        for _ in range(sent):
            assert peer.send_frame(b"\x7fgarbage")
        await peer.send(PING)
        answers = 0
        while (answer := await next_json(peer))["id"] != "alive":  # the session lives
            answers += 1
        while True:  # anything answered after the ping
            with anyio.move_on_after(0.5):
                await peer.receive()
                answers += 1
                continue
            break
        assert 0 < answers < sent // 2
        assert answer["result"] == {}
    assert "error answers dropped" in caplog.text


def corrupt_sizes(signal: Any) -> list[Any]:
    """The answer's sizes as a fuzzer found them: a superscript digit, a negative size."""
    if signal.get("type") != "answer":
        return [signal]
    sdp = signal["sdp"]
    for line in sdp.split("\r\n"):
        if line.startswith("a=x-mcp-webrtc:"):
            sdp = sdp.replace(line, "a=x-mcp-webrtc:1;max-message-size=\u00b2")
        elif line.startswith("a=max-message-size:"):
            sdp = sdp.replace(line, "a=max-message-size:-1")
    return [{"type": "answer", "sdp": sdp}]


async def test_malformed_sizes_in_the_peer_answer_are_ignored(caplog: Any) -> None:
    """Regression: `²` crashed parse_capabilities (the peer's answer killed its own
    session) and `-1` crashed every send ("chunk_size must be positive")."""
    caplog.set_level(logging.WARNING, "mcp_webrtc.peer")
    async with memory_pair(client_rewrite=corrupt_sizes) as (client, _):
        result = await client.call_tool("blob", {"size": 300_000, "seed": 1})
        assert text_of(result) == payload(300_000, 1)
    assert "max-message-size=\u00b2" in caplog.text
    assert "a=max-message-size:-1" in caplog.text
