"""The few places where mcp 1.x and 2.x differ, in one module."""

from __future__ import annotations

from typing import Any, Literal

from mcp.shared.message import SessionMessage
from mcp.types import JSONRPCMessage
from pydantic import TypeAdapter

_adapter: TypeAdapter[Any] = TypeAdapter(JSONRPCMessage)

MessageKind = Literal["request", "notification", "response"]


def parse_message(payload: str | bytes | bytearray) -> SessionMessage:
    """Parse one JSON-RPC message; raises ``pydantic.ValidationError``."""
    return SessionMessage(_adapter.validate_json(payload))


def dump_message(message: SessionMessage) -> str:
    text: str = message.message.model_dump_json(by_alias=True, exclude_unset=True)
    return text


def classify(message: SessionMessage) -> tuple[MessageKind, str | int | None]:
    """Whether a message is a request, notification or response, and its id."""
    root = getattr(message.message, "root", message.message)  # 1.x wraps in a RootModel
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
