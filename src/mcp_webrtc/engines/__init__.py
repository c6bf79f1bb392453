"""WebRTC engines: the interface (:mod:`.base`) and its two implementations.

``WebRTCOptions.engine`` chooses: ``"aiortc"`` (pure Python, every platform),
``"libwebrtc"`` (Chrome's engine, PyPI ``wrtc``, installed by ``mcp-webrtc[fast]``), or
``"auto"`` (the default): libwebrtc when ``wrtc`` imports, else aiortc.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from functools import cache

from ..exceptions import ConfigurationError
from ..options import IceServer, WebRTCOptions
from .base import Endpoint, Engine, EngineEvents, PathInfo

ENGINES = ("aiortc", "libwebrtc")


@cache
def libwebrtc_available() -> bool:
    """Whether the ``wrtc`` package (import name ``webrtc``) can be imported."""
    if importlib.util.find_spec("webrtc") is None:
        return False
    try:
        import webrtc  # noqa: F401
    except ImportError:
        return False
    return True


def resolve(name: str) -> str:
    """The engine that ``name`` (an option value) means here."""
    if name == "auto":
        return "libwebrtc" if libwebrtc_available() else "aiortc"
    if name == "libwebrtc" and not libwebrtc_available():
        raise ConfigurationError(
            "engine 'libwebrtc' needs the wrtc package: pip install 'mcp-webrtc[fast]'"
        )
    if name not in ENGINES:
        raise ConfigurationError(f"unknown engine {name!r}; expected auto, aiortc or libwebrtc")
    return name


def create(
    options: WebRTCOptions,
    servers: tuple[IceServer, ...],
    events: EngineEvents,
    keep_host: Callable[[str], bool] | None,
) -> Engine:
    """A new engine (one peer connection) as ``options.engine`` asks."""
    if resolve(options.engine) == "libwebrtc":
        from .libwebrtc import LibwebrtcEngine

        return LibwebrtcEngine(options, servers, events, keep_host)
    from .aiortc import AiortcEngine

    return AiortcEngine(options, servers, events, keep_host)


__all__ = [
    "ENGINES",
    "Endpoint",
    "Engine",
    "EngineEvents",
    "PathInfo",
    "create",
    "libwebrtc_available",
    "resolve",
]
