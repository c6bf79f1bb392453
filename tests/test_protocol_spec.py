"""The pure core against docs/protocol.md: its test vectors, and framing properties."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from mcp_webrtc._core import framing, jsonrpc, sdp, signals
from mcp_webrtc.exceptions import FrameError, OversizeMessageError

SPEC = Path(__file__).resolve().parent.parent / "docs" / "protocol.md"


def _vectors() -> list[dict[str, Any]]:
    text = SPEC.read_text()
    block = re.search(r"```jsonl vectors\n(.*?)```", text, re.S)
    assert block, "docs/protocol.md has no test-vector block"
    return [json.loads(line) for line in block.group(1).splitlines() if line.strip()]


VECTORS = _vectors()


def _of(kind: str) -> list[dict[str, Any]]:
    found = [v for v in VECTORS if v["kind"] == kind]
    assert found, kind
    return found


@pytest.mark.parametrize("vector", _of("encode"))
def test_encode_vectors(vector: dict[str, Any]) -> None:
    payload = bytes.fromhex(vector.get("payload", ""))
    if vector["frame"] in ("first", "first_deflate"):
        size: int = vector["size"] if "size" in vector else vector["total"]
        frame = framing.first_frame(
            vector["id"], size, payload, deflate=vector["frame"] == "first_deflate"
        )
    elif vector["frame"] == "next":
        frame = framing.next_frame(vector["id"], payload)
    else:
        frame = framing.abort_frame(vector["id"])
    assert frame.hex() == vector["hex"]


def _decode(limit: int, frames: list[dict[str, str]]) -> tuple[list[str], list[int]]:
    decoder = framing.FrameDecoder(limit)
    messages: list[str] = []
    errors: list[int] = []
    for item in frames:
        data: str | bytes = item["text"] if "text" in item else bytes.fromhex(item["hex"])
        try:
            out = decoder.feed(data)
        except OversizeMessageError:
            errors.append(jsonrpc.MESSAGE_TOO_LARGE)
            continue
        except FrameError:
            errors.append(jsonrpc.PARSE_ERROR)
            continue
        if out is not None:
            messages.append(out if isinstance(out, str) else out.decode())
    return messages, errors


@pytest.mark.parametrize("vector", _of("decode"))
def test_decode_vectors(vector: dict[str, Any]) -> None:
    messages, errors = _decode(vector["limit"], vector["frames"])
    assert messages == vector["messages"]
    assert errors == vector["errors"]


@pytest.mark.parametrize("vector", _of("sdp"))
def test_capability_line_vectors(vector: dict[str, Any]) -> None:
    caps = sdp.parse_capabilities(f"v=0\r\n{vector['line']}\r\n")
    assert caps.framing_version == vector["version"]
    assert caps.max_message_size == vector["max_message_size"]
    assert caps.deflate is vector["deflate"]
    if "sctp_max_message_size" in vector:
        assert caps.sctp_max_message_size == vector["sctp_max_message_size"]
    if caps.max_message_size is not None and not caps.ignored:  # a well-formed line
        added = sdp.add_capability(
            "v=0\r\nt=0 0\r\na=x\r\n", vector["max_message_size"], deflate=vector["deflate"]
        )
        assert added == f"v=0\r\nt=0 0\r\n{vector['line']}\r\na=x\r\n"


@pytest.mark.parametrize("vector", _of("sniff"))
def test_request_id_sniffing_vectors(vector: dict[str, Any]) -> None:
    assert jsonrpc.sniff_request_id(vector["head"].encode()) == vector["id"]


def test_plain_sdp_defaults_to_rfc_8841_limit() -> None:
    caps = sdp.parse_capabilities("v=0\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n")
    assert not caps.chunking
    assert caps.sctp_max_message_size == 65536
    assert sdp.parse_capabilities("a=max-message-size:262144\r\n").sctp_max_message_size == 262144


def _drain(scheduler: framing.FrameScheduler) -> list[tuple[str | bytes, framing.Outgoing]]:
    out = []
    while (popped := scheduler.pop_frame()) is not None:
        out.append(popped)
    return out


@pytest.mark.parametrize("size", [1, 999, 1000, 1001, 4096, 100_003])
def test_chunked_round_trip_any_size(size: int) -> None:
    data = bytes(range(256)) * (size // 256 + 1)
    data = data[:size]
    scheduler = framing.FrameScheduler()
    scheduler.push_chunked(data, 1000)
    decoder = framing.FrameDecoder(10**6)
    results = [decoder.feed(frame) for frame, _ in _drain(scheduler)]
    assert results[-1] == data
    assert all(r is None for r in results[:-1])
    assert decoder.buffered_bytes == 0


@pytest.mark.parametrize("size", [0, 1, 999, 70_000, 300_001])
@pytest.mark.parametrize("kind", ["json", "random"])
def test_deflated_round_trip(size: int, kind: str) -> None:
    import random

    if kind == "json":
        data = json.dumps({"items": list(range(size))}).encode()[:size]
    else:
        data = random.Random(size).randbytes(size)
    scheduler = framing.FrameScheduler()
    item = scheduler.push_chunked(data, 1000, deflate_level=1)
    frames = [frame for frame, _ in _drain(scheduler)]
    assert item.finished
    assert all(len(f) <= 1000 + framing.FIRST_HEADER_SIZE for f in frames)
    assert isinstance(frames[0], bytes)
    assert frames[0][0] == framing.FRAME_FIRST_DEFLATE
    decoder = framing.FrameDecoder(10**6)
    results = [decoder.feed(frame) for frame in frames]
    assert results[-1] == data
    assert decoder.buffered_bytes == 0
    if kind == "json" and size > 10_000:
        assert sum(len(f) for f in frames) < size * 0.75  # it does compress


def test_deflate_bomb_is_refused_without_inflating_it() -> None:
    bomb = framing.deflate(b"{" + b" " * 50_000_000)  # 50 MB of spaces, ~50 KB deflated
    decoder = framing.FrameDecoder(1_000_000)
    with pytest.raises(FrameError, match="beyond its announced size"):
        decoder.feed(framing.first_frame(1, 1000, bomb, deflate=True))
    assert decoder.buffered_bytes == 0


def test_small_message_waits_at_most_one_chunk_behind_a_large_one() -> None:
    scheduler = framing.FrameScheduler()
    big = scheduler.push_chunked(b"x" * 10_000, 1000)
    first = scheduler.pop_frame()
    assert first is not None
    assert first[1] is big
    small = scheduler.push_whole('{"id":1}', 8)
    frame, item = scheduler.pop_frame() or (None, None)
    assert item is small
    assert frame == '{"id":1}'
    rest = _drain(scheduler)
    assert len(rest) == 9
    assert all(item is big for _, item in rest)


def test_interleaved_large_messages_keep_their_own_order() -> None:
    scheduler = framing.FrameScheduler()
    a = scheduler.push_chunked(b"a" * 3000, 1000)
    b = scheduler.push_chunked(b"b" * 2000, 1000)
    order = [item for _, item in _drain(scheduler)]
    assert order == [a, b, a, b, a]
    decoder = framing.FrameDecoder(10_000)
    scheduler.push_chunked(b"a" * 3000, 1000)
    scheduler.push_chunked(b"b" * 2000, 1000)
    done = [decoder.feed(f) for f, _ in _drain(scheduler)]
    assert [d for d in done if d is not None] == [b"b" * 2000, b"a" * 3000]


def test_cancel_after_start_yields_abort_and_frees_receiver() -> None:
    scheduler = framing.FrameScheduler()
    item = scheduler.push_chunked(b"z" * 5000, 1000)
    decoder = framing.FrameDecoder(10_000)
    frame, _ = scheduler.pop_frame() or (b"", None)
    assert decoder.feed(frame) is None
    assert decoder.buffered_bytes == 1000
    abort = scheduler.cancel(item)
    assert abort == framing.abort_frame(item.message_id or 0)
    assert decoder.feed(abort) is None
    assert decoder.buffered_bytes == 0
    assert scheduler.pop_frame() is None
    # cancelling one that never started needs no ABORT
    unsent = scheduler.push_chunked(b"q" * 5000, 1000)
    assert scheduler.cancel(unsent) is None


def test_oversize_is_reported_once_and_the_rest_discarded() -> None:
    decoder = framing.FrameDecoder(2000)
    with pytest.raises(OversizeMessageError) as info:
        decoder.feed(framing.first_frame(9, 5000, b"{" * 1000))
    assert (info.value.size, info.value.limit) == (5000, 2000)
    for _ in range(4):
        assert decoder.feed(framing.next_frame(9, b"x" * 1000)) is None
    assert decoder.buffered_bytes == 0
    assert decoder.feed("{}") == "{}"


def test_too_many_partial_messages_is_refused() -> None:
    decoder = framing.FrameDecoder(10_000, max_partial=2)
    decoder.feed(framing.first_frame(1, 10, b"a"))
    decoder.feed(framing.first_frame(2, 10, b"a"))
    with pytest.raises(FrameError, match="in flight"):
        decoder.feed(framing.first_frame(3, 10, b"a"))


def test_message_ids_wrap_around() -> None:
    scheduler = framing.FrameScheduler()
    scheduler._next_id = framing.MAX_MESSAGE_ID
    assert scheduler.push_chunked(b"x" * 10, 5).message_id == 0


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"type": "offer", "sdp": "v=0"}, signals.DescriptionSignal("offer", "v=0")),
        ('{"type":"answer","sdp":"v=0"}', signals.DescriptionSignal("answer", "v=0")),
        (
            {
                "type": "candidate",
                "candidate": {
                    "candidate": "candidate:1 1 udp 1 1.2.3.4 5 typ host",
                    "sdpMid": "0",
                    "sdpMLineIndex": 0,
                },
            },
            signals.CandidateSignal("candidate:1 1 udp 1 1.2.3.4 5 typ host", "0", 0),
        ),
        (
            {"type": "candidate", "candidate": "candidate:x", "id": "0", "label": 0},
            signals.CandidateSignal("candidate:x", "0", 0),
        ),
        ({"candidate": {"candidate": "", "sdpMid": "0"}}, signals.CandidateSignal("", "0", None)),
        ({"type": "bye", "reason": "done"}, signals.ByeSignal("done")),
    ],
)
def test_signal_shapes(raw: object, expected: signals.Signal) -> None:
    parsed = signals.parse_signal(raw)
    assert parsed == expected
    if not isinstance(parsed, signals.UnknownSignal) and not isinstance(raw, str):
        assert signals.parse_signal(signals.to_json_object(parsed)) == parsed


@pytest.mark.parametrize(
    "raw",
    [
        "nope",
        42,
        [1],
        {"type": "renegotiate", "renegotiate": True},
        {"type": "offer"},
        {"type": "candidate", "candidate": {"candidate": 5}},
        {"type": "candidate", "candidate": {"candidate": "c", "sdpMLineIndex": "0"}},
    ],
)
def test_unknown_signals_never_raise(raw: object) -> None:
    assert isinstance(signals.parse_signal(raw), signals.UnknownSignal)


def test_error_response_shape() -> None:
    text = jsonrpc.error_response(None, jsonrpc.PARSE_ERROR, "Parse error")
    assert json.loads(text) == {
        "jsonrpc": "2.0",
        "id": None,
        "error": {"code": -32700, "message": "Parse error"},
    }


def test_byte_order_mark_is_removed_from_whole_and_chunked_messages() -> None:
    decoder = framing.FrameDecoder(10_000)
    assert decoder.feed(b"\xef\xbb\xbf{}") == b"{}"
    body = b"\xef\xbb\xbf" + b'{"a":"' + b"x" * 3000 + b'"}'
    decoder.feed(framing.first_frame(1, len(body), body[:1000]))
    decoder.feed(framing.next_frame(1, body[1000:2000]))
    assert decoder.feed(framing.next_frame(1, body[2000:])) == body[3:]


def test_oversize_deflate_with_bad_data_is_still_reported_as_oversize() -> None:
    decoder = framing.FrameDecoder(1000)
    with pytest.raises(OversizeMessageError) as info:
        decoder.feed(framing.first_frame(1, 5000, b"\xff\xff\xff\xff", deflate=True))
    assert info.value.head == b""


class _Pairs(list[tuple[str, Any]]):
    """A JSON object as its members in order (duplicates kept)."""


def _usable(value: object) -> bool:
    if isinstance(value, int) and not isinstance(value, bool):
        return abs(value) <= 2**53 - 1
    return isinstance(value, str)


def _top_level_ids(text: str) -> tuple[bool, list[Any]]:
    """From a full parse: whether a top-level string ``method`` comes before the first
    nested value, and the top-level ``id`` values before it, in order."""
    members = json.loads(text, object_pairs_hook=_Pairs)
    is_request, ids = False, []
    for key, value in members:
        if isinstance(value, list):  # a nested object (_Pairs) or array: stop here
            break
        if key == "method":
            is_request = isinstance(value, str)
        elif key == "id":
            ids.append(value)
    return is_request, ids


def _reference_id(text: str) -> jsonrpc.RequestId | None:
    """What docs/protocol.md says the sniffer returns, from a full parse of the message."""
    is_request, ids = _top_level_ids(text)
    if is_request and ids and _usable(ids[-1]):
        found: jsonrpc.RequestId = ids[-1]
        return found
    return None


def _crafted_message(rng: Any) -> str:
    keys = ['"id"', '"method"', '"x\\"id"', '"\\"id"', '"id\\""', '"\\u0069d"', '"meth\\"od"',
            '"params"', '"jsonrpc"', '"result"', '"i\\\\d"', '"\\"method\\":"']  # fmt: skip
    scalars = ["1", "-7", "0", "1.5", "2e3", "true", "null", '"a"', '"\\"id\\":9"',
               '"method"', '"tools/call"', "9007199254740993", '"\\\\"', '"x\\u0022y"']  # fmt: skip
    nested = ['{"id":3,"method":"n"}', '["id",4]', "{}", "[]"]
    space = ["", " ", "\n", "\t "]
    members = []
    for _ in range(rng.randint(0, 7)):
        value = rng.choice(nested) if rng.random() < 0.15 else rng.choice(scalars)
        members.append(f"{rng.choice(space)}{rng.choice(keys)}{rng.choice(space)}:{value}")
    text: str = rng.choice(space) + "{" + ",".join(members) + rng.choice(space) + "}"
    return text


def test_request_id_sniffing_agrees_with_a_full_parse_on_crafted_input() -> None:
    """Regression: escaped quotes in keys gave a wrong id (1 518 of 100 000 inputs)."""
    import random

    rng = random.Random(13)
    for _ in range(100_000):
        text = _crafted_message(rng)
        assert jsonrpc.sniff_request_id(text.encode()) == _reference_id(text), text


def test_request_id_sniffing_never_guesses_from_a_cut_message() -> None:
    import random

    rng = random.Random(14)
    for _ in range(20_000):
        text = _crafted_message(rng)
        cut = text[: rng.randint(0, len(text))]
        found = jsonrpc.sniff_request_id(cut.encode())
        # only ever a top-level id (a later duplicate may override it: best effort)
        assert found is None or found in _top_level_ids(text)[1], (cut, text)


@pytest.mark.parametrize(
    "line",
    [
        "a=x-mcp-webrtc:1;max-message-size=\u00b2",  # isdigit() is true, int() fails
        "a=x-mcp-webrtc:1;max-message-size=" + "9" * 4301,  # int() refuses > 4300 digits
        "a=x-mcp-webrtc:\u00b9;max-message-size=65536",
        "a=x-mcp-webrtc:;;;=;max-message-size",
        "a=x-mcp-webrtc",
        "a=max-message-size:-1",  # crashed the sender: "chunk_size must be positive"
        "a=max-message-size:\u00b2",
        "a=max-message-size:" + "1" * 5000,
        "a=max-message-size:100",
        "a=max-message-size: 262144 ",
    ],
)
def test_malformed_sizes_are_ignored_never_fatal(line: str) -> None:
    caps = sdp.parse_capabilities(f"v=0\r\nt=0 0\r\n{line}\r\n")
    assert caps.max_message_size is None or 1024 <= caps.max_message_size <= 2**53
    assert caps.sctp_max_message_size == 0 or 1024 <= caps.sctp_max_message_size <= 2**53
    if caps.sctp_max_message_size != 262144:  # the last case is well-formed
        assert caps.ignored, "what was ignored is reported for a log line"
    # and the engine is not given what was ignored
    cleaned = sdp.drop_bad_size_lines(f"v=0\r\nt=0 0\r\n{line}\r\n")
    assert ("max-message-size:" in cleaned) == (caps.sctp_max_message_size == 262144)


def test_a_broken_message_costs_one_error_answer_not_one_per_frame() -> None:
    decoder = framing.FrameDecoder(10**6)
    decoder.feed(framing.first_frame(1, 10**5, b"x" * 1000, deflate=False))
    with pytest.raises(FrameError, match="without payload"):
        decoder.feed(framing.next_frame(1, b""))
    for _ in range(10_000):  # a flood of frames for that message: dropped, no answers
        assert decoder.feed(framing.next_frame(1, b"")) is None
        assert decoder.feed(framing.next_frame(1, b"y" * 10)) is None
    assert decoder.buffered_bytes == 0
    deflated = framing.deflate(b"z" * 100_000)
    decoder.feed(framing.first_frame(2, 100_000, deflated[:10], deflate=True))
    with pytest.raises(FrameError, match="without payload"):
        decoder.feed(framing.next_frame(2, b""))
    assert decoder.feed(framing.next_frame(2, deflated[10:])) is None
    assert decoder.buffered_bytes == 0
