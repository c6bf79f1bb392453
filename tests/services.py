"""Services the scale-out tests start on loopback: redis-server and rendezvous processes."""

from __future__ import annotations

import contextlib
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from .support import free_port

REDIS = shutil.which("redis-server")


class RedisProcess:
    """A throwaway ``redis-server`` on 127.0.0.1 (no persistence) that can be stopped and
    started again on the same port, empty, as a restarted Redis would be."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._workdir = workdir
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        assert REDIS is not None, "redis-server is missing: run `make test`"
        args = [REDIS, "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""]
        args += ["--appendonly", "no", "--dir", str(self._workdir)]
        self._process = subprocess.Popen(args, stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while not _answers_ping(self.port):
            assert self._process.poll() is None, "redis-server exited"
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.02)

    def kill(self) -> None:
        if self._process is not None:
            self._process.kill()
            self._process.wait()
            self._process = None


def _answers_ping(port: int) -> bool:
    import socket

    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1) as sock:
        sock.sendall(b"PING\r\n")
        return sock.recv(16).startswith(b"+PONG")
    return False


@contextlib.contextmanager
def redis_server(workdir: Path) -> Iterator[RedisProcess]:
    redis = RedisProcess(workdir)
    redis.start()
    try:
        yield redis
    finally:
        redis.kill()


class SignalProcess:
    """``mcp-webrtc signal`` in its own process (so that a test can kill it)."""

    def __init__(self, *args: str, token: str) -> None:
        self.port = free_port()
        self.url = f"ws://127.0.0.1:{self.port}/"
        command = [sys.executable, "-m", "mcp_webrtc", "signal", "--port", str(self.port)]
        command += ["--host-token", token, *args]
        self.process = subprocess.Popen(command)  # its log lands in the test's captured output
        deadline = time.monotonic() + 20
        while self.health() is None:
            assert self.process.poll() is None, "the rendezvous exited"
            assert time.monotonic() < deadline, "the rendezvous did not start"
            time.sleep(0.05)

    def health(self) -> tuple[int, bytes] | None:
        """``GET /healthz``: status and body, or ``None`` when nothing answers."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=2) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()
        except OSError:
            return None

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        self.process.wait()
