"""Which request a relayed message belongs to, and what a caller is told when the
upstream fails (mcp_webrtc.relay: the rules `serve --url` and `connect --listen` share)."""

from __future__ import annotations

import json
from typing import Any

import anyio
import pytest

from mcp_webrtc._compat import parse_message
from mcp_webrtc.exceptions import MessageTooLargeError
from mcp_webrtc.relay import Calls, UpstreamGone, refuse, relay, tag_related

pytestmark = [pytest.mark.core, pytest.mark.anyio]


def message(**fields: Any) -> Any:
    return parse_message(json.dumps({"jsonrpc": "2.0", **fields}))


def call(request_id: int, token: object = None) -> Any:
    params: dict[str, Any] = {"name": "t", "arguments": {}}
    if token is not None:
        params["_meta"] = {"progressToken": token}
    return message(id=request_id, method="tools/call", params=params)


def progress(token: object) -> Any:
    return message(method="notifications/progress", params={"progressToken": token, "progress": 1})


def test_messages_from_the_server_travel_with_the_request_they_belong_to() -> None:
    calls = Calls()
    assert calls.related(message(method="notifications/message", params={})) is None
    calls.asked(call(1, token="a"))
    calls.asked(call(2))
    assert calls.related(progress("a")) == 1  # its call's stream, though 2 came later
    log = message(method="notifications/message", params={"level": "info", "data": "x"})
    assert calls.related(log) == 2  # the latest pending request's stream
    sampling = message(id=7, method="sampling/createMessage", params={})
    assert calls.related(sampling) == 2
    assert calls.related(message(id=2, result={})) is None  # routed by its own id
    calls.answered(message(id=2, result={}))
    assert calls.related(log) == 1
    calls.answered(message(id=1, result={}))
    assert len(calls) == 0
    assert calls.related(progress("a")) is None  # an ended call's token is forgotten
    tagged = tag_related(calls)(log)
    assert tagged.metadata is None


async def test_pending_requests_and_later_ones_are_answered_with_why() -> None:
    calls = Calls()
    calls.asked(call(1))
    calls.asked(message(method="notifications/initialized"))
    to_caller, answers = anyio.create_memory_object_stream[Any](10)
    from_caller, read = anyio.create_memory_object_stream[Any](10)
    await from_caller.send(call(2))
    await from_caller.send(message(method="notifications/cancelled", params={"requestId": 2}))
    from_caller.close()  # the caller leaves: refuse returns at once, not after LINGER
    with anyio.fail_after(5):
        await refuse(read, to_caller, calls, "the MCP server at http://x/mcp went away")
    to_caller.close()
    answered = [json.loads(m.message.model_dump_json()) async for m in answers]
    assert [a["id"] for a in answered] == [1, 2]
    assert {a["error"]["code"] for a in answered} == {-32000}
    assert {a["error"]["message"] for a in answered} == {"the MCP server at http://x/mcp went away"}


def test_a_cancelled_request_is_no_longer_pending() -> None:
    """Servers do not answer a cancelled request: it must not stay 'the latest pending'
    (later server messages would go to a stream its client has closed)."""
    calls = Calls()
    calls.asked(call(1, token="t"))
    calls.asked(message(method="notifications/cancelled", params={"requestId": 1}))
    assert len(calls) == 0
    assert calls.related(message(method="notifications/message", params={})) is None
    assert calls.related(progress("t")) is None


class Narrow:
    """A caller's write stream that takes nothing above ``limit`` bytes, as a peer's does."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.taken: list[dict[str, Any]] = []

    async def send(self, item: Any) -> None:
        text = item.message.model_dump_json()
        if len(text) > self.limit:
            raise MessageTooLargeError(len(text), self.limit, "the peer's")
        self.taken.append(json.loads(text))


async def test_what_the_caller_cannot_take_is_answered_or_dropped_and_the_relay_goes_on() -> None:
    big = "x" * 2000
    caller_read_in, caller_read = anyio.create_memory_object_stream[Any](10)
    narrow = Narrow(1000)
    up_write, from_caller = anyio.create_memory_object_stream[Any](10)
    to_caller, up_read = anyio.create_memory_object_stream[Any](10)
    await to_caller.send(message(id=9, method="sampling/createMessage", params={"big": big}))
    await to_caller.send(message(method="notifications/message", params={"data": big}))
    await to_caller.send(message(method="notifications/message", params={"data": "small"}))
    to_caller.close()  # then the upstream ends
    with anyio.fail_after(5), pytest.raises(UpstreamGone, match="closed the session"):
        await relay((caller_read, narrow), (up_read, up_write), Calls())
    answered = json.loads(from_caller.receive_nowait().message.model_dump_json())
    assert answered["id"] == 9
    assert answered["error"]["code"] == -32050  # the server learns why, at once
    assert [m["params"]["data"] for m in narrow.taken] == ["small"]  # the big one dropped
    caller_read_in.close()


def test_serve_url_names_its_server_without_credentials_and_checks_headers() -> None:
    from mcp_webrtc.exceptions import ConfigurationError
    from mcp_webrtc.http_upstream import HttpServer

    server = HttpServer("https://me:s3cret@mcp.internal:8443/mcp?api_key=k3y#x")
    assert server.shown == "https://mcp.internal:8443/mcp"  # what peers and logs are told
    with pytest.raises(ConfigurationError, match="not a valid HTTP header"):
        HttpServer("http://127.0.0.1:1/mcp", {"Authorization": "Bearer a\x00b"})
    with pytest.raises(ConfigurationError, match="not a valid HTTP header"):
        HttpServer("http://127.0.0.1:1/mcp", {"Bad Name": "x"})
    with pytest.raises(ConfigurationError, match="--url wants"):
        HttpServer("ftp://host/mcp")
