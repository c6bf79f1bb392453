"""A Python stdio MCP server (``python -m tests.stdio_server``) for the bridge tests."""

from __future__ import annotations

from .support import make_server

if __name__ == "__main__":
    make_server("python-stdio").run("stdio")
