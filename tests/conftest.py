"""Test configuration: asyncio only, every WebRTC test on every engine, and a guard that
WebRTC tests run in an isolated netns.

Run the suite with the README's test command (``make test``): it creates a fresh network
namespace holding only ``lo`` with 127.0.0.1 and 127.0.0.2, so no packet can leave the
machine. Running pytest outside such a namespace is refused.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from . import support
from .services import RedisProcess, redis_server


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


#: Modules whose tests make WebRTC connections: each of them runs once per engine.
WEBRTC_MODULES = {
    "test_scale_out",
    "test_bridges",
    "test_browser",
    "test_errors",
    "test_access",
    "test_identity",
    "test_lab",
    "test_mcp_session",
    "test_node_interop",
    "test_options_and_info",
    "test_process_peer",
    "test_serve",
}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "engines(*names, reason=...): run only on these engines; the others are skipped "
        "with the reason given",
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if metafunc.module.__name__.rpartition(".")[2] not in WEBRTC_MODULES:
        return
    marker = metafunc.definition.get_closest_marker("engines")
    params = []
    for name in support.ENGINES:
        if marker is not None and name not in marker.args:
            reason = marker.kwargs.get("reason", "does not apply to this engine")
            params.append(pytest.param(name, marks=pytest.mark.skip(reason=reason)))
        else:
            params.append(pytest.param(name))
    metafunc.parametrize("engine", params, indirect=True)


@pytest.fixture(autouse=True)
def engine(request: pytest.FixtureRequest) -> Iterator[str]:
    """The engine of this test's peers (``support.options()`` and the command lines use it)."""
    name: str = getattr(request, "param", support.ENGINES[0])
    previous, support.ENGINE = support.ENGINE, name
    os.environ["MCP_WEBRTC_ENGINE"] = name  # for the commands and peers tests start
    yield name
    support.ENGINE = previous


@pytest.fixture
def redis(tmp_path: Path) -> Iterator[RedisProcess]:
    """A throwaway redis-server on loopback, for this test only."""
    with redis_server(tmp_path) as server:
        yield server
