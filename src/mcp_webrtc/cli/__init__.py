"""The ``mcp-webrtc`` command: signal, serve, connect, demo.

Logs go to stderr; ``connect`` writes only JSON-RPC to stdout. uvloop is used when
installed (``pip install 'mcp-webrtc[fast]'``). SIGTERM and SIGINT stop a command
gracefully: ``serve`` and ``connect`` say bye to their peers and exit within
``close_timeout``. No token or credential is ever logged.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import importlib
import logging
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import anyio

from .. import engines
from .._logs import RedactingFormatter
from ..exceptions import ConfigurationError, MCPWebRTCError
from .commands import COMMANDS, resolve_secrets
from .parser import build_parser

logger = logging.getLogger("mcp_webrtc.cli")

Command = Callable[[Any], Awaitable[int]]


async def _until_stopped(command: Command, args: Any) -> int:
    """Run ``command``; SIGTERM or SIGINT cancels it (it cleans up, then returns 0)."""
    status = 0
    async with anyio.create_task_group() as tg:

        async def stop_on_signal() -> None:
            with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                async for signum in signals:
                    logger.info("%s: stopping", signal.Signals(signum).name)
                    tg.cancel_scope.cancel()
                    return

        async def run() -> None:
            nonlocal status
            status = await command(args)
            tg.cancel_scope.cancel()

        tg.start_soon(stop_on_signal)
        tg.start_soon(run)
    return status


#: glibc's mallopt parameter for the mmap threshold, and the size we fix it at.
_M_MMAP_THRESHOLD = -3
_MMAP_THRESHOLD = 256 * 1024


def _return_large_buffers_to_the_system() -> None:
    """Keep multi-MiB messages in their own mappings, given back when freed.

    glibc raises its mmap threshold after each large free (up to 32 MiB), so later large
    buffers come from the heap, whose freed memory the process keeps: a ``serve`` host
    grew from 102 to 337 MiB over rounds of five concurrent 8 MiB results and stayed there
    (268 MiB once our own copies were cut; 120 MiB with the threshold fixed). Only for the
    command's own process; a library must not change its host program's allocator.
    """
    if not sys.platform.startswith("linux"):
        return
    try:
        mallopt = ctypes.CDLL(None).mallopt  # glibc; musl has none
    except (OSError, AttributeError):
        return
    mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD)


def _configure_logging(name: str, verbose: int, secrets: list[str], worker: int | None) -> None:
    base = logging.INFO if name in ("signal", "serve") else logging.WARNING
    handler = logging.StreamHandler(sys.stderr)
    who = "%(name)s" if worker is None else f"%(name)s[worker {worker}]"
    handler.setFormatter(
        RedactingFormatter(f"%(asctime)s %(levelname)s {who}: %(message)s", secrets)
    )
    logging.basicConfig(level=max(base - 10 * verbose, logging.DEBUG), handlers=[handler])
    if verbose < 2:  # a line per packet check or HTTP request (serve --url)
        for name in ("aioice", "httpx", "httpx2"):
            logging.getLogger(name).setLevel(logging.WARNING)


#: Allocations between young collections (CPython's default: 700); see below.
_GC_YOUNG_THRESHOLD = 20_000


def _tune_garbage_collection(engine: str | None) -> None:
    """Keep full garbage collections rare and short in a busy host.

    Each full collection walked every object of startup (the MCP SDK, pydantic, the
    engine: ~110 000), ~50 ms on an idle 2-core machine and ~120 ms on a loaded one; and
    at 200 peers x 5 calls/s a host ran one every few seconds, because every young
    collection (each 700 allocations) promoted the objects of the calls in flight. Every
    session waited each one out: they made the p99 latency. ``gc.freeze()`` after the
    imports takes startup's objects out of the walk (as the Python documentation
    recommends); fewer young collections (each costs only what survives) promote far
    fewer. Like the allocator setting above, only for the command's own process.
    """
    if engine is not None:
        with contextlib.suppress(ConfigurationError):
            if engines.resolve(engine) == "libwebrtc":
                importlib.import_module("mcp_webrtc.engines.libwebrtc")
            else:
                importlib.import_module("mcp_webrtc.engines.aiortc")
    gc.collect()
    gc.freeze()
    gc.set_threshold(_GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])


def main(argv: Sequence[str] | None = None) -> int:
    words = list(sys.argv[1:] if argv is None else argv)
    command: list[str] = []
    if "--" in words:  # `serve ... -- COMMAND ARGS`: the command is not ours to parse
        split = words.index("--")
        words, command = words[:split], words[split + 1 :]
    args = build_parser().parse_args(words)
    if command:
        if args.name != "serve":
            raise SystemExit("mcp-webrtc: only serve takes a command after --")
        args.command = command
    args.problem = None
    try:
        secrets = resolve_secrets(args)
    except MCPWebRTCError as exc:
        if args.name != "connect":
            print(f"mcp-webrtc: {exc}", file=sys.stderr)
            return 2
        args.problem, secrets = exc, []  # connect tells its MCP client why, then exits
    return run(args, secrets)


def run(args: Any, secrets: list[str]) -> int:
    """Run a parsed command in this process (``serve --workers`` runs one per worker)."""
    args.redacted = secrets  # what logs never show (the supervisor hands it to workers)
    _configure_logging(args.name, args.verbose, secrets, getattr(args, "worker", None))
    _return_large_buffers_to_the_system()
    _tune_garbage_collection(getattr(args, "engine", None))
    backend_options: dict[str, Any] = {}
    try:
        import uvloop  # noqa: F401

        backend_options["use_uvloop"] = True
    except ImportError:
        pass
    started = time.monotonic()
    try:
        status = anyio.run(
            _until_stopped, COMMANDS[args.name], args, backend_options=backend_options
        )
    except KeyboardInterrupt:
        status = 130
    except MCPWebRTCError as exc:
        print(f"mcp-webrtc: {exc}", file=sys.stderr)
        status = 1
    except BaseExceptionGroup as group:  # raised from inside a task group (a bridge)
        ours, rest = group.split(MCPWebRTCError)
        if ours is None or rest is not None:
            raise
        for error in ours.exceptions:
            print(f"mcp-webrtc: {error}", file=sys.stderr)
        status = 1
    logger.debug("done in %.1f s", time.monotonic() - started)
    return status


__all__ = ["build_parser", "main", "run"]
