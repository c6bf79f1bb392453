"""The connection core without a network: bytes and events in, actions out."""

from __future__ import annotations

import base64
import json
import random
import zlib

import pytest

from mcp_webrtc._core import deflate, framing, jsonrpc
from mcp_webrtc._core.connection import (
    ANSWER_BURST,
    Connection,
    ConnectSnapshot,
    Settings,
    diagnose,
)
from mcp_webrtc._core.deflate import choose_level
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
    assert choose_level(random.Random(1).randbytes(16 * KiB), 10e6, Clock()) is None  # no gain
    no_inflate = connection(deflate=False)  # the peer did not announce it inflates
    no_inflate.send(text_of_size(200 * KiB, compressible=True))
    assert frames(no_inflate)[0][0] == framing.FRAME_FIRST


def test_deflating_slower_than_the_channel_is_not_done() -> None:
    """With a channel faster than deflate, even compressible data goes plain."""
    sample = ("abc" * 10_000).encode()
    assert choose_level(sample, channel_rate=10e6, clock=Stepping(0.0001))  # 300 MB/s
    assert choose_level(sample, channel_rate=10e6, clock=Stepping(1.0)) is None  # 30 KB/s


class Durations(Clock):
    """A clock under which the n-th measured span takes ``spans[n]`` seconds."""

    def __init__(self, *spans: float) -> None:
        super().__init__()
        self.readings = [t for span in spans for t in (0.0, span)]

    def __call__(self) -> float:
        return self.readings.pop(0)


def test_the_level_that_sends_fastest_is_chosen() -> None:
    """Level 1 deflates fastest, level 2 smaller: a fast channel wants the first (deflate is
    the bottleneck), a slow one the smallest output (the channel is)."""
    words = random.Random(3).choices(["tool", "result", "content", "text", "the", "of"], k=4000)
    sample = json.dumps({"result": " ".join(words)}).encode()[: 16 * KiB]
    fast, slow = len(sample) / 330e6, len(sample) / 80e6  # deflating at 330 and 80 MB/s
    assert choose_level(sample, 100e6, Durations(fast, slow)) == 1
    smallest = min(deflate.LEVELS, key=lambda level: len(deflate.deflate(sample, level)))
    assert choose_level(sample, 1e3, Durations(fast, slow)) == smallest  # 1 kB/s
    # a channel faster than level 1 deflates: level 2 is not even tried
    assert choose_level(sample, 1e9, Durations(fast)) is None


@pytest.mark.parametrize("level", deflate.LEVELS)
def test_what_is_sent_is_plain_raw_deflate(level: int) -> None:
    """Whatever library deflates (zlib-ng when installed), any inflater reads the stream."""
    data = text_of_size(300 * KiB, compressible=True).encode()
    assert zlib.decompress(deflate.deflate(data, level), -15) == data


def test_the_measured_channel_rate_decides_compression() -> None:
    """The engine's typical rate is a guess; what the channel is seen to move replaces it:
    on a link slower than the guess, compressing JSON text pays after all."""
    core = connection(rate=1e12, clock=Stepping(0.0001))  # typical: faster than deflate
    core.send(text_of_size(200 * KiB, compressible=True))
    assert frames(core)[0][0] == framing.FRAME_FIRST
    core.channel_moved(1000, 0.001)  # too little to be a sample: ignored
    assert core.channel_rate == 1e12
    core.channel_moved(1_000_000, 1.0)  # the buffer drained at 1 MB/s
    assert core.channel_rate == 1e6
    core.send(text_of_size(200 * KiB, compressible=True))
    assert frames(core)[0][0] == framing.FRAME_FIRST_DEFLATE
    core.channel_moved(1_000_000, 0.5)  # then at 2 MB/s: averaged
    assert 1e6 < core.channel_rate < 2e6


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
