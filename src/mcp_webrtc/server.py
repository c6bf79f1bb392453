"""Run an MCP server over any transport, whatever the MCP SDK version."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import Any

from ._compat import lowlevel_server


async def run_server(
    server: object,
    transport: AbstractAsyncContextManager[tuple[Any, Any]],
    *,
    raise_exceptions: bool = False,
) -> None:
    """Serve one MCP session over ``transport`` until the peer leaves.

    ``server`` is an ``MCPServer`` (mcp 2.x), a ``FastMCP`` (mcp 1.x) or a low-level
    ``Server``; ``transport`` any SDK-shaped transport, e.g. :class:`WebRTCServerTransport`.
    """
    lowlevel = lowlevel_server(server)
    async with transport as (read_stream, write_stream):
        await lowlevel.run(
            read_stream,
            write_stream,
            lowlevel.create_initialization_options(),
            raise_exceptions=raise_exceptions,
        )
