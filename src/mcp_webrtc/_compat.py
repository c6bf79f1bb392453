"""The few places where mcp 1.x and 2.x differ, in one module."""

from __future__ import annotations

import functools
import inspect
import json
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Literal

from mcp.shared.message import SessionMessage
from mcp.types import JSONRPCMessage
from pydantic import TypeAdapter, ValidationError

from ._core import jsonrpc

_adapter: TypeAdapter[Any] = TypeAdapter(JSONRPCMessage)

MessageKind = Literal["request", "notification", "response"]


def parse_message(payload: str | bytes | bytearray) -> SessionMessage:
    """Parse one JSON-RPC message; raises ``pydantic.ValidationError``."""
    return SessionMessage(_adapter.validate_json(payload))


@dataclass(frozen=True, slots=True)
class Rejected:
    """Input that is not a JSON-RPC message: ``answer`` is the error to send back (``None``
    for an invalid *response*: answering it could loop between two peers), ``why`` a line
    for the log (docs/protocol.md, §5)."""

    answer: str | None
    why: str


def read_message(payload: str | bytes | bytearray) -> SessionMessage | Rejected:
    """One JSON-RPC message from ``payload``, or what to answer and log instead. Never
    raises: a session outlives any input."""
    try:
        return parse_message(payload)
    except ValidationError as exc:
        error = exc
    except Exception as exc:  # e.g. nested deeper than the parser goes
        parse_error = jsonrpc.error_response(None, jsonrpc.PARSE_ERROR, "Parse error")
        return Rejected(parse_error, f"cannot parse a message: {exc!r}")
    try:
        obj = json.loads(payload)
    except (ValueError, RecursionError):  # not JSON, or nested deeper than we parse
        parse_error = jsonrpc.error_response(None, jsonrpc.PARSE_ERROR, "Parse error")
        return Rejected(parse_error, f"invalid JSON: {payload[:200]!r}")
    if isinstance(obj, dict) and "method" not in obj and "id" in obj:
        return Rejected(None, f"an invalid JSON-RPC response: {error}")
    answer = jsonrpc.error_response(
        jsonrpc.request_id_of(obj),
        jsonrpc.INVALID_REQUEST,
        "Invalid Request",
        repr(error.errors()[:3]),
    )
    return Rejected(answer, f"an invalid JSON-RPC message: {error}")


def dump_message(message: SessionMessage) -> str:
    text: str = message.message.model_dump_json(by_alias=True, exclude_unset=True)
    return text


def message_root(message: SessionMessage) -> Any:
    """The JSON-RPC message model itself (1.x wraps it in a RootModel)."""
    return getattr(message.message, "root", message.message)


def classify(message: SessionMessage) -> tuple[MessageKind, str | int | None]:
    """Whether a message is a request, notification or response, and its id."""
    root = message_root(message)
    request_id = getattr(root, "id", None)
    if hasattr(root, "method"):
        return ("request" if request_id is not None else "notification"), request_id
    return "response", request_id


def find_lowlevel_server(server: object) -> Any | None:
    """The low-level ``Server`` behind an MCPServer (2.x), FastMCP (1.x) or Server, or
    ``None`` when ``server`` is none of them."""
    for attribute in ("_lowlevel_server", "_mcp_server"):
        inner = getattr(server, attribute, None)
        if inner is not None:
            return inner
    if hasattr(server, "run") and hasattr(server, "create_initialization_options"):
        return server
    return None


def lowlevel_server(server: object) -> Any:
    """Like :func:`find_lowlevel_server`, but raises ``TypeError`` for anything else."""
    inner = find_lowlevel_server(server)
    if inner is not None:
        return inner
    raise TypeError(
        f"{type(server).__name__} is not an MCP server (expected mcp's MCPServer, FastMCP or "
        "low-level Server)"
    )


@functools.cache
def streamable_http_opener() -> tuple[Any, bool]:
    """The SDK's ``streamable_http_client``; raises ``ConfigurationError`` on an mcp 1.x
    too old to have it (``streamablehttp_client`` took no ``http_client``); and whether it
    bounds server-sent events (``max_sse_event_size``, 2.x)."""
    from mcp.client import streamable_http

    opener = getattr(streamable_http, "streamable_http_client", None)
    if opener is None:
        from .exceptions import ConfigurationError

        raise ConfigurationError("serve --url needs a newer mcp (pip install -U mcp)")
    return opener, "max_sse_event_size" in inspect.signature(opener).parameters


@asynccontextmanager
async def streamable_http_client(
    url: str, headers: Mapping[str, str], max_event_size: int
) -> AsyncIterator[tuple[Any, Any]]:
    """The SDK's Streamable HTTP client transport (``(read, write)``; 1.x also yields a
    session id getter), with ``headers`` on every request and server-sent events up to
    ``max_event_size`` bytes where the SDK bounds them (2.x: 1 MiB by default)."""
    from mcp.shared._httpx_utils import create_mcp_http_client

    opener, bounds_events = streamable_http_opener()
    client = create_mcp_http_client(headers=dict(headers))
    extra: dict[str, Any] = {"max_sse_event_size": max_event_size} if bounds_events else {}
    async with client, opener(url, http_client=client, **extra) as streams:
        yield streams[0], streams[1]
