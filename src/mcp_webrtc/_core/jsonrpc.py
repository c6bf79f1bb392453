"""JSON-RPC helpers the transport needs without the MCP SDK: error answers and ids."""

from __future__ import annotations

import json
import re
from typing import Any, Literal

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
#: Our transport-level code: the message was larger than the receiver's limit.
MESSAGE_TOO_LARGE = -32050

RequestId = str | int


def error_response(request_id: RequestId | None, code: int, message: str, data: Any = None) -> str:
    error: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        error["data"] = data
    return json.dumps({"jsonrpc": "2.0", "id": request_id, "error": error}, separators=(",", ":"))


def request_id_of(obj: object) -> RequestId | None:
    """The ``id`` of a decoded JSON-RPC request object, when it has a usable one."""
    if isinstance(obj, dict) and "method" in obj:
        rid = obj.get("id")
        if isinstance(rid, str) or (isinstance(rid, int) and not isinstance(rid, bool)):
            return rid
    return None


#: Integer ids beyond this cannot be represented exactly by every JSON implementation.
MAX_SAFE_INTEGER = 2**53 - 1
_SPACE = re.compile(r"[ \t\n\r]*")
_decoder = json.JSONDecoder()
_scanstring: Any = getattr(json.decoder, "scanstring")  # noqa: B009 - untyped in typeshed
_MISSING = object()


def _leading_members(text: str) -> tuple[dict[str, object], bool]:
    """The top-level members of a JSON object text read one by one, up to the first nested
    object or array (or the end of ``text``); and whether the whole object was read."""
    members: dict[str, object] = {}
    end = len(text)
    pos = _SPACE.match(text).end()  # type: ignore[union-attr]
    if not text.startswith("{", pos):
        return members, False
    pos += 1
    while True:
        pos = _SPACE.match(text, pos).end()  # type: ignore[union-attr]
        if text.startswith("}", pos):
            return members, True
        if not text.startswith('"', pos):
            return members, False  # not an object member
        try:
            key, pos = _scanstring(text, pos + 1)
        except ValueError:
            return members, False  # truncated
        pos = _SPACE.match(text, pos).end()  # type: ignore[union-attr]
        if not text.startswith(":", pos):
            return members, False
        pos = _SPACE.match(text, pos + 1).end()  # type: ignore[union-attr]
        if pos >= end or text[pos] in "{[":
            return members, False  # nested: stop here, as documented
        try:
            value, pos = _decoder.raw_decode(text, pos)
        except (ValueError, RecursionError):
            return members, False
        pos = _SPACE.match(text, pos).end()  # type: ignore[union-attr]
        if pos >= end or text[pos] not in ",}":
            return members, False  # cut short ("1" of "1.5"), or not JSON: value unknown
        members[key] = value
        if text[pos] == "}":
            return members, True
        pos += 1


def _usable_id(value: object) -> RequestId | None:
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) <= MAX_SAFE_INTEGER:
        return value
    return None


def sniff_request_id(head: bytes) -> RequestId | None:
    """Best effort: the top-level ``id`` of a request from the first bytes of its JSON.

    Used to answer a request that is too large to be read whole. The head is read as the
    start of a JSON object, member by member, up to the first nested object or array
    (``params`` usually), so an ``id`` or ``method`` inside it, or inside a key or a
    string, is never taken. Returns ``None`` unless a top-level ``method`` was seen and a
    complete top-level ``id`` that is a string or an integer within ±(2**53 - 1).
    """
    members, _ = _leading_members(head.decode("utf-8", errors="replace"))
    if not isinstance(members.get("method"), str):
        return None
    return _usable_id(members.get("id"))


Kind = Literal["request", "notification", "response"]
#: How much of a message :func:`envelope` reads at most (the rest is passed on unread).
ENVELOPE_HEAD = 4096


def envelope(
    message: str | bytes | bytearray, *, request_ids: bool = True
) -> tuple[Kind, RequestId | None] | None:
    """What a bridge must know of a JSON-RPC message it passes on unparsed: its kind and
    id (``None``: not a JSON object). Read from its first members when ``id`` comes before
    any nested value (the Python SDK writes ``jsonrpc``, ``id``, ``method``); else the
    message is parsed whole (the TypeScript SDK writes a request's ``id`` last). With
    ``request_ids`` off, a message with a ``method`` is never parsed whole for its id (a
    caller that only settles responses need not know it)."""
    head = message[:ENVELOPE_HEAD]
    text = head if isinstance(head, str) else bytes(head).decode("utf-8", errors="replace")
    members, whole = _leading_members(text)
    unknown_id = "id" not in members and not whole
    if (not members and not whole) or (unknown_id and ("method" not in members or request_ids)):
        try:
            obj = json.loads(message)
        except (ValueError, RecursionError):
            return None
        if not isinstance(obj, dict):
            return None
        members = obj
    request_id = _usable_id(members.get("id"))
    if "method" in members:
        return ("request" if "id" in members else "notification"), request_id
    return "response", request_id
