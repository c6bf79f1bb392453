"""JSON-RPC helpers the transport needs without the MCP SDK: error answers and ids."""

from __future__ import annotations

import json
import re
from typing import Any

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


def sniff_request_id(head: bytes) -> RequestId | None:
    """Best effort: the top-level ``id`` of a request from the first bytes of its JSON.

    Used to answer a request that is too large to be read whole. The head is read as the
    start of a JSON object, member by member, up to the first nested object or array
    (``params`` usually), so an ``id`` or ``method`` inside it, or inside a key or a
    string, is never taken. Returns ``None`` unless a top-level ``method`` was seen and a
    complete top-level ``id`` that is a string or an integer within ±(2**53 - 1).
    """
    text = head.decode("utf-8", errors="replace")
    end = len(text)
    pos = _SPACE.match(text).end()  # type: ignore[union-attr]
    if not text.startswith("{", pos):
        return None
    pos += 1
    is_request = False
    found: object = _MISSING
    while True:
        pos = _SPACE.match(text, pos).end()  # type: ignore[union-attr]
        if not text.startswith('"', pos):
            break  # "}" (the end), or not an object member
        try:
            key, pos = _scanstring(text, pos + 1)
        except ValueError:
            break  # truncated
        pos = _SPACE.match(text, pos).end()  # type: ignore[union-attr]
        if not text.startswith(":", pos):
            break
        pos = _SPACE.match(text, pos + 1).end()  # type: ignore[union-attr]
        if pos >= end or text[pos] in "{[":
            break  # nested: stop here, as documented
        try:
            value, pos = _decoder.raw_decode(text, pos)
        except (ValueError, RecursionError):
            break
        pos = _SPACE.match(text, pos).end()  # type: ignore[union-attr]
        if pos >= end or text[pos] not in ",}":
            break  # cut short ("1" of "1.5"), or not JSON: the value is not known
        if key == "method":
            is_request = isinstance(value, str)
        elif key == "id":
            found = value
        if text[pos] == "}":
            break
        pos += 1
    if not is_request:
        return None
    if isinstance(found, str):
        return found
    if isinstance(found, int) and not isinstance(found, bool) and abs(found) <= MAX_SAFE_INTEGER:
        return found
    return None
