"""MCP server objects for ``mcp-webrtc serve --app tests.app:SERVER`` (and ``:WORKER``)."""

from __future__ import annotations

import os

from .support import make_server

SERVER = make_server("app")

#: The test server plus a tool naming the process that answers (``serve --workers``).
WORKER = make_server("worker")


@WORKER.tool()  # type: ignore[untyped-decorator]
def whoami() -> str:
    """The id of the process serving this session."""
    return str(os.getpid())
