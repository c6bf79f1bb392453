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


_ID = re.compile(rb'"id"\s*:\s*(-?\d{1,18}|"(?:[^"\\]|\\.){0,256}")')
_METHOD = re.compile(rb'"method"\s*:')


def sniff_request_id(head: bytes) -> RequestId | None:
    """Best effort: the top-level ``id`` of a request from the first bytes of its JSON.

    Used to answer a request that is too large to be read whole. Only the part before the
    first nested object or array is searched, so an ``id`` or ``method`` inside ``params`` or
    ``result`` is never taken; a message whose ``method`` is not found there is not a request.
    """
    depth = 0
    end = len(head)
    in_string = False
    escaped = False
    for index, byte in enumerate(head):
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:
                escaped = True
            elif byte == 0x22:
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x7B, 0x5B):
            depth += 1
            if depth > 1:
                end = index
                break
    top = head[:end]
    if not _METHOD.search(top):
        return None
    match = _ID.search(top)
    if match is None:
        return None
    token = match.group(1)
    if token.startswith(b'"'):
        try:
            value = json.loads(token)
        except ValueError:
            return None
        return value if isinstance(value, str) else None
    return int(token)
