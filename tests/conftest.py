"""Test configuration: asyncio only, and a guard that WebRTC tests run in an isolated netns.

Run the suite with the README's test command (``make test``): it creates a fresh network
namespace holding only ``lo`` with 127.0.0.1 and 127.0.0.2, so no packet can leave the
machine. Running pytest outside such a namespace is refused.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest


def _interfaces() -> list[str]:
    lines = Path("/proc/net/dev").read_text().splitlines()[2:]
    return [line.split(":")[0].strip() for line in lines]


def pytest_sessionstart(session: pytest.Session) -> None:
    if os.environ.get("MCP_WEBRTC_TEST_NETNS") != "1" or _interfaces() != ["lo"]:
        pytest.exit(
            "refusing to run: the tests must run inside an isolated network namespace with "
            "only lo (use `make test`, which sets this up)",
            returncode=3,
        )


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
