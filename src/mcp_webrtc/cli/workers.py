"""``mcp-webrtc serve --workers N``: N worker processes, each registering as its own host
in the room's pool, so the rendezvous spreads the room's sessions over N cores.

The supervisor (the command's own process) starts each worker with the parsed command
line (secrets travel through multiprocessing's pipe, never argv or the environment),
restarts a worker that exits unasked (with a growing pause if it keeps crashing), and on
SIGTERM or SIGINT asks every worker to stop (each says bye to its peers) and waits for
them. With ``--metrics-port`` the supervisor serves the sum of the workers' metrics.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import multiprocessing
import os
import shutil
import signal
import tempfile
import threading
import time
from multiprocessing.connection import wait
from multiprocessing.process import BaseProcess
from typing import Any

import anyio

from ..options import WebRTCOptions

logger = logging.getLogger("mcp_webrtc.serve")

#: A worker that ran at least this long before crashing is restarted at once.
_STABLE = 10.0
_MAX_PAUSE = 30.0


def worker_count(value: str) -> int:
    """``--workers``: a positive number, or ``auto`` for the number of CPUs."""
    if value == "auto":
        return os.cpu_count() or 1
    try:
        count = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError("want a number of workers or 'auto'") from None
    if count < 1:
        raise argparse.ArgumentTypeError("want at least one worker")
    return count


def _worker_main(args: argparse.Namespace, index: int) -> None:
    from . import run

    parent = multiprocessing.parent_process()
    if parent is not None:  # a supervisor that dies takes its workers with it (gracefully)
        threading.Thread(target=_stop_with, args=(parent.sentinel,), daemon=True).start()
    args.workers, args.worker = 1, index
    raise SystemExit(run(args, args.redacted))


def _stop_with(sentinel: int) -> None:
    wait([sentinel])
    os.kill(os.getpid(), signal.SIGTERM)


class _Slot:
    def __init__(self, index: int) -> None:
        self.index = index
        self.process: BaseProcess | None = None
        self.started = 0.0
        self.pause = 0.5


async def supervise(args: argparse.Namespace) -> int:
    """Run ``args.workers`` workers until cancelled (see the module docstring); each gets
    ``args``, whose ``redacted`` secrets its logs never show."""
    context = multiprocessing.get_context("spawn")
    metrics_dir = None
    if args.metrics_port is not None:
        metrics_dir = tempfile.mkdtemp(prefix="mcp-webrtc-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir  # read by the workers
        _serve_sum_of_workers(args.metrics_host, args.metrics_port, metrics_dir)
    slots = [_Slot(i + 1) for i in range(args.workers)]

    def start(slot: _Slot) -> None:
        slot.process = context.Process(
            target=_worker_main, args=(args, slot.index), name=f"worker {slot.index}"
        )
        slot.process.start()
        slot.started = time.monotonic()
        logger.info("worker %d started (pid %s)", slot.index, slot.process.pid)

    try:
        for slot in slots:
            start(slot)
        while True:
            sentinels = {s.process.sentinel: s for s in slots if s.process is not None}
            ready: list[Any] = await anyio.to_thread.run_sync(
                wait, list(sentinels), abandon_on_cancel=True
            )
            for sentinel in ready:
                slot = sentinels[sentinel]
                assert slot.process is not None
                slot.process.join()
                _forget_metrics(metrics_dir, slot.process.pid)
                ran = time.monotonic() - slot.started
                slot.pause = 0.5 if ran > _STABLE else min(slot.pause * 2, _MAX_PAUSE)
                logger.warning(
                    "worker %d (pid %s) exited with status %s after %.1f s; restarting in %.1f s",
                    slot.index,
                    slot.process.pid,
                    slot.process.exitcode,
                    ran,
                    slot.pause,
                )
                slot.process = None
            for slot in slots:
                if slot.process is None:
                    await anyio.sleep(slot.pause)
                    start(slot)
    finally:
        with anyio.CancelScope(shield=True):
            await _stop_all(slots, WebRTCOptions().close_timeout + 5.0)
            if metrics_dir is not None:
                shutil.rmtree(metrics_dir, ignore_errors=True)


async def _stop_all(slots: list[_Slot], limit: float) -> None:
    """SIGTERM every worker (each says bye to its peers), then wait; SIGKILL stragglers."""
    running = [s.process for s in slots if s.process is not None and s.process.is_alive()]
    for process in running:
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid or 0, signal.SIGTERM)
    deadline = time.monotonic() + limit
    for process in running:
        await anyio.to_thread.run_sync(process.join, max(0.0, deadline - time.monotonic()))
        if process.is_alive():
            logger.warning("worker pid %s did not stop in time; killing it", process.pid)
            process.kill()
            process.join()
    logger.info("every worker stopped")


def _serve_sum_of_workers(host: str, port: int, directory: str) -> None:
    from prometheus_client import CollectorRegistry, start_http_server
    from prometheus_client.multiprocess import MultiProcessCollector

    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=directory)  # type: ignore[no-untyped-call]
    start_http_server(port, host, registry=registry)


def _forget_metrics(directory: str | None, pid: int | None) -> None:
    """A dead worker's live gauges stop counting (its counters stay in the sum)."""
    if directory is not None and pid is not None:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid, directory)  # type: ignore[no-untyped-call]
