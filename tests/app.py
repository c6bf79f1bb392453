"""An MCP server object for ``mcp-webrtc serve --app tests.app:SERVER``."""

from __future__ import annotations

from .support import make_server

SERVER = make_server("app")
