"""The connection core without a network: bytes and events in, actions out."""

from __future__ import annotations

import base64
import json
import random

import pytest

from mcp_webrtc._core import framing, jsonrpc
from mcp_webrtc._core.connection import (
    ANSWER_BURST,
    Connection,
    ConnectSnapshot,
    Settings,
    deflate_pays,
    diagnose,
)
from mcp_webrtc._core.sdp import add_capability
from mcp_webrtc._core.signals import CandidateSignal
from mcp_webrtc.exceptions import ConnectFailureReason, MessageTooLargeError

SDP = "v=0\r\nt=0 0\r\na=max-message-size:262144\r\n"
KiB = 1024


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Stepping(Clock):
    """A clock that moves by ``step`` at each reading: each measured span takes ``step``."""

    def __init__(self, step: float) -> None:
        super().__init__()
        self.step = step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


def connection(
    *, capable: bool = True, deflate: bool = True, rate: float = 10e6, clock: Clock | None = None
) -> Connection:
    settings = Settings(
        max_message_size=1024 * KiB,
        chunk_size=16 * KiB,
        compression=True,
        max_receive_queue=64 * KiB,
        channel_rate=rate,
    )
    core = Connection(settings, clock or Clock())
    remote = add_capability(SDP, 512 * KiB, deflate=deflate) if capable else SDP
    core.remote_description(remote)
    return core


def frames(core: Connection) -> list[str | bytes]:
    out = []
    while (popped := core.next_frame()) is not None:
        frame, item = popped
        core.frame_sent(frame, item)
        out.append(frame)
    return out


def text_of_size(size: int, compressible: bool) -> str:
    if compressible:
        body = "abc" * size
    else:
        body = base64.b64encode(random.Random(size).randbytes(size)).decode()
    return json.dumps({"jsonrpc": "2.0", "id": 1, "result": {"t": body}})[: size - 2] + '"}'


def test_small_messages_go_whole_and_large_ones_in_chunks() -> None:
    core = connection()
    core.send('{"jsonrpc":"2.0","method":"ping"}')
    assert frames(core) == ['{"jsonrpc":"2.0","method":"ping"}']
    item = core.send(text_of_size(100 * KiB, compressible=False))
    sent = frames(core)
    assert len(sent) > 1
    kinds = {f[0] for f in sent if isinstance(f, bytes)}
    assert kinds <= {framing.FRAME_FIRST, framing.FRAME_FIRST_DEFLATE, framing.FRAME_NEXT}
    assert item.delivered
    assert core.messages_sent == 2


def test_limits_of_this_side_and_of_the_peer() -> None:
    core = connection()
    with pytest.raises(MessageTooLargeError, match="this side's"):
        core.send("x" * (1024 * KiB + 1))
    with pytest.raises(MessageTooLargeError, match="the peer's limit of 524288"):
        core.send("x" * (600 * KiB))
    plain = connection(capable=False)  # a plain peer: whole messages up to its SCTP limit
    with pytest.raises(MessageTooLargeError, match="does not reassemble"):
        plain.send("x" * (300 * KiB))
    plain.send("x" * (200 * KiB))
    assert frames(plain) == ["x" * (200 * KiB)]


def test_compression_only_where_it_pays() -> None:
    core = connection()  # a 10 MB/s channel (aiortc): deflating pays even for base64 (75 %)
    core.send(text_of_size(200 * KiB, compressible=True))
    assert frames(core)[0][0] == framing.FRAME_FIRST_DEFLATE
    core.send(text_of_size(200 * KiB, compressible=False))
    assert frames(core)[0][0] == framing.FRAME_FIRST_DEFLATE
    fast = connection(rate=1e12, clock=Stepping(0.001))  # a channel faster than deflate
    fast.send(text_of_size(200 * KiB, compressible=True))
    assert frames(fast)[0][0] == framing.FRAME_FIRST
    assert not deflate_pays(random.Random(1).randbytes(16 * KiB), 10e6, Clock())  # no gain
    no_inflate = connection(deflate=False)  # the peer did not announce it inflates
    no_inflate.send(text_of_size(200 * KiB, compressible=True))
    assert frames(no_inflate)[0][0] == framing.FRAME_FIRST


def test_deflating_slower_than_the_channel_is_not_done() -> None:
    """With a channel faster than deflate, even compressible data goes plain."""
    sample = ("abc" * 10_000).encode()
    assert deflate_pays(sample, channel_rate=10e6, clock=Stepping(0.0001))  # 300 MB/s
    assert not deflate_pays(sample, channel_rate=10e6, clock=Stepping(1.0))  # 30 KB/s


def test_error_answers_are_rate_limited() -> None:
    clock = Clock()
    core = connection(clock=clock)
    results = [core.receive(b"\x7fjunk") for _ in range(ANSWER_BURST + 10)]
    assert all(r is not None and "malformed" in r for r in results[:ANSWER_BURST])
    assert core.answers_dropped == 10
    assert len(frames(core)) == ANSWER_BURST
    clock.now += 1.0  # 20 more per second
    for _ in range(25):
        core.receive(b"\x7fjunk")
    assert len(frames(core)) == 20


def test_the_reader_falls_behind_and_catches_up() -> None:
    core = connection()
    message = json.dumps({"x": "y" * 20_000})
    for _ in range(3):
        core.receive(message)
    assert not core.reader_behind  # 60 KB of 64 KiB
    core.receive(message)
    assert core.reader_behind
    core.next_message()
    assert not core.reader_caught_up  # 60 KB waiting: more than half
    core.next_message()
    core.next_message()
    assert core.reader_caught_up
    assert core.messages_received == 4


def test_candidates_before_the_description_are_held() -> None:
    core = Connection(Settings(1024 * KiB, 16 * KiB, True, 64 * KiB, 10e6))
    early = CandidateSignal("candidate:1 1 udp 1 127.0.0.2 5 typ host", "0", 0)
    assert not core.remote_candidate(early)
    assert not core.remote_candidate(CandidateSignal("", "0", 0))  # end: never applied
    core.remote_description(add_capability(SDP, 512 * KiB))
    assert core.held_candidates() == [early]
    assert core.remote_candidate(early)


@pytest.mark.parametrize(
    ("snapshot", "initiator", "reason"),
    [
        (ConnectSnapshot(False, False, 0, 0, False, "new", "new"), True, "NO_REMOTE_DESCRIPTION"),
        (ConnectSnapshot(True, False, 0, 0, True, "new", "new"), True, "NO_LOCAL_CANDIDATES"),
        (ConnectSnapshot(True, False, 2, 0, True, "new", "new"), True, "NO_REMOTE_DESCRIPTION"),
        (ConnectSnapshot(True, True, 2, 0, True, "new", "new"), True, "NO_REMOTE_CANDIDATES"),
        (ConnectSnapshot(True, True, 0, 0, True, "new", "new"), False, "NO_REMOTE_CANDIDATES"),
        (ConnectSnapshot(True, True, 2, 2, True, "checking", "new"), True, "ICE_FAILED"),
        (ConnectSnapshot(True, True, 2, 2, True, "connected", "connecting"), True, "DTLS_FAILED"),
        (
            ConnectSnapshot(True, True, 2, 2, True, "completed", "connected"),
            True,
            "CHANNEL_NOT_OPENED",
        ),
    ],
)
def test_diagnosis_names_the_stage_that_stalled(
    snapshot: ConnectSnapshot, initiator: bool, reason: str
) -> None:
    found, detail = diagnose(snapshot, initiator=initiator)
    assert found is ConnectFailureReason[reason]
    if snapshot.started:
        assert f"local candidates: {snapshot.local_candidates}" in detail


def test_no_local_candidates_names_the_turn_server() -> None:
    snapshot = ConnectSnapshot(True, False, 0, 0, True, "new", "new", ("turns:t.example:5349",))
    reason, detail = diagnose(snapshot, initiator=True)
    assert reason is ConnectFailureReason.NO_LOCAL_CANDIDATES
    assert "turns:t.example:5349 gave no relayed candidate" in detail


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ('{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"a":1}}', ("request", 1)),
        ('{"method":"tools/call","params":{"a":1},"jsonrpc":"2.0","id":2}', ("request", 2)),
        ('{"jsonrpc":"2.0","method":"notifications/x","params":{"a":1}}', ("notification", None)),
        ('{"jsonrpc":"2.0","id":"r","result":{"a":1}}', ("response", "r")),
        ('{"result":{"a":1},"jsonrpc":"2.0","id":3}', ("response", 3)),
        ('{"jsonrpc":"2.0","id":4,"error":{"code":-1,"message":"m"}}', ("response", 4)),
        ("[1, 2]", None),
        ("not json", None),
    ],
    ids=[
        "py-request",
        "ts-request",
        "notification",
        "response",
        "late-id",
        "error",
        "list",
        "junk",
    ],
)
def test_a_bridge_reads_only_kind_and_id(message: str, expected: object) -> None:
    assert jsonrpc.envelope(message) == expected
    assert jsonrpc.envelope(message.encode()) == expected
