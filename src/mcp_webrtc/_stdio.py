"""This process's stdin and stdout as lines, for a stdio bridge that must be able to end.

Reading and writing happen in daemon threads: a read blocked on a stdin nobody closes, or
a write blocked on a stdout nobody reads, never keeps the process alive (the MCP SDK's
``stdio_server`` reads in a worker thread that does, so a bridge built on it could not
exit while its client kept stdin open). Both directions are bounded: the reader thread
reads ahead at most ``limit`` lines, and :meth:`LineWriter.write` waits while ``limit``
lines are not yet written.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import queue
import threading


class _ToLoop:
    """Calls into the event loop from a thread, silently once the loop has closed."""

    def __init__(self) -> None:
        self._loop = asyncio.get_running_loop()

    def __call__(self, callback: object, *args: object) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits
            self._loop.call_soon_threadsafe(callback, *args)  # type: ignore[arg-type]


class LineReader:
    """Lines read from file descriptor ``fd`` by a daemon thread. ``None`` means end of
    file. The thread uses ``os.read`` on the descriptor, never a Python file object, whose
    lock a blocked read would hold when the interpreter shuts down (a fatal error)."""

    def __init__(self, fd: int, limit: int = 16) -> None:
        self._lines: asyncio.Queue[bytes | None] = asyncio.Queue()
        self._slots = threading.Semaphore(limit)
        to_loop = _ToLoop()

        def run() -> None:
            pending = b""
            try:
                while chunk := os.read(fd, 1 << 16):
                    pending += chunk
                    *lines, pending = pending.split(b"\n")
                    for line in lines:
                        self._slots.acquire()
                        to_loop(self._lines.put_nowait, line + b"\n")
            except OSError:  # closed under us
                pass
            if pending:
                to_loop(self._lines.put_nowait, pending)
            to_loop(self._lines.put_nowait, None)

        threading.Thread(target=run, name="mcp-webrtc stdin", daemon=True).start()

    async def readline(self) -> bytes | None:
        line = await self._lines.get()
        if line is None:
            self._lines.put_nowait(None)  # stays at end of file
        else:
            self._slots.release()
        return line


class LineWriter:
    """Writes lines to file descriptor ``fd`` from a daemon thread, in order; closing it
    closes ``fd``."""

    def __init__(self, fd: int, limit: int = 16) -> None:
        self._lines: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self._limit = limit
        self._unwritten = 0
        self._room = asyncio.Event()
        self._room.set()
        self._finished = asyncio.Event()
        self.broken = False  # the reader closed its end
        self._closing = False
        to_loop = _ToLoop()

        def run() -> None:
            while (line := self._lines.get()) is not None:
                try:
                    view = memoryview(line)
                    while view:
                        view = view[os.write(fd, view) :]
                except OSError:
                    to_loop(self._break)
                    break
                to_loop(self._wrote)
            with contextlib.suppress(OSError):
                os.close(fd)
            to_loop(self._finished.set)

        threading.Thread(target=run, name="mcp-webrtc stdout", daemon=True).start()

    def _wrote(self) -> None:
        self._unwritten -= 1
        if self._unwritten < self._limit:
            self._room.set()

    def _break(self) -> None:
        self.broken = True
        self._room.set()

    async def write(self, line: bytes) -> None:
        """Queue one line (``line`` ends with a newline); waits while the reader lags."""
        if self.broken or self._closing:
            return
        self._unwritten += 1
        self._lines.put(line)
        if self._unwritten >= self._limit:
            self._room.clear()
            await self._room.wait()

    async def aclose(self, grace: float) -> None:
        """Write what is queued (at most ``grace`` seconds), then close the descriptor."""
        if not self._closing:
            self._closing = True
            self._lines.put(None)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(grace):
                await self._finished.wait()


def take_stdio() -> tuple[int, int]:
    """Private descriptors for this process's stdin and stdout, with file descriptor 1
    pointed at the null device: whatever else writes to ``sys.stdout`` (a stray print, a
    library) can no longer corrupt the JSON-RPC stream, and closing ours ends the client's
    view of our stdout."""
    stdin, stdout = os.dup(0), os.dup(1)
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 1)
    os.close(null)
    return stdin, stdout
