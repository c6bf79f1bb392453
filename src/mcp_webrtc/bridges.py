"""Joining MCP streams, and what a stdio MCP server started for a peer may see.

A stdio server started for a peer gets the MCP SDK's default environment (``PATH``,
``HOME``, ``USER``... on POSIX) plus only what the operator names: ``env`` values and
variables passed through by name. It never inherits the rest of this process's
environment, where tokens live (a remote client calling a tool that prints the environment
would read them).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any

import anyio
from mcp.shared.message import SessionMessage

from ._compat import classify, parse_message
from ._core import jsonrpc
from .exceptions import ConfigurationError, MessageTooLargeError
from .stdio_server import StdioServer

logger = logging.getLogger("mcp_webrtc.bridges")

SessionHandler = Callable[[Any, Any], Awaitable[None]]

#: Variables of mcp-webrtc itself (tokens, TURN credentials): never given to a child.
OWN_PREFIX = "MCP_WEBRTC_"


async def pump(source: Any, sink: Any, back: Any) -> None:
    """Forward SDK session messages from ``source`` to ``sink`` until ``source`` ends.

    A request too large for ``sink`` is answered on ``back`` (the source's write side)
    with a -32050 error, so the caller learns why; a too-large notification is dropped
    with a log line. Either way the bridge goes on.
    """
    async with sink:
        async for item in source:
            if not isinstance(item, SessionMessage):
                logger.warning("dropping unparsable message: %s", item)
                continue
            try:
                await sink.send(item)
            except MessageTooLargeError as exc:
                kind, request_id = classify(item)
                logger.warning("%s not forwarded: %s", kind, exc)
                if kind == "request":
                    await back.send(parse_message(too_large_answer(request_id, exc)))


def too_large_answer(request_id: jsonrpc.RequestId | None, exc: MessageTooLargeError) -> str:
    """The -32050 answer to a request that could not be forwarded."""
    return jsonrpc.error_response(
        request_id,
        jsonrpc.MESSAGE_TOO_LARGE,
        f"Request too large to forward: {exc}",
        {"size": exc.size, "limit": exc.limit},
    )


async def bridge(a: tuple[Any, Any], b: tuple[Any, Any]) -> None:
    """Join two ``(read, write)`` stream pairs until either side ends."""
    async with anyio.create_task_group() as tg:

        async def one_way(source: Any, sink: Any, back: Any) -> None:
            try:
                await pump(source, sink, back)
            finally:
                tg.cancel_scope.cancel()

        tg.start_soon(one_way, a[0], b[1], a[1])
        tg.start_soon(one_way, b[0], a[1], b[1])


def child_environment(
    env: Mapping[str, str] | None = None,
    pass_env: Iterable[str] = (),
    source: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """What a stdio server gets beyond the SDK's default environment: ``pass_env``
    variables copied from ``source`` (this process's environment) where set, then
    ``env``. Names of mcp-webrtc's own variables are refused."""
    source = os.environ if source is None else source
    pass_env = list(pass_env)
    own = sorted({n for n in [*pass_env, *(env or {})] if n.upper().startswith(OWN_PREFIX)})
    if own:
        raise ConfigurationError(
            f"{OWN_PREFIX}* variables hold mcp-webrtc's secrets and are never given to the "
            f"MCP server it runs: {', '.join(own)}"
        )
    extra = {name: source[name] for name in pass_env if name in source}
    extra.update(env or {})
    return extra


def stdio_command_handler(
    command: str,
    args: Sequence[str] = (),
    *,
    env: Mapping[str, str] | None = None,
    cwd: str | None = None,
) -> StdioServer:
    """A ``serve`` target that runs ``command`` as a stdio MCP server for each peer, its
    JSON-RPC lines passed through unparsed (see :class:`~mcp_webrtc.stdio_server.StdioServer`).
    The process gets the SDK's default environment plus ``env`` (see
    :func:`child_environment`); its stderr is serve's."""
    return StdioServer(command, args, env=env, cwd=cwd)


__all__ = ["bridge", "child_environment", "pump", "stdio_command_handler", "too_large_answer"]
