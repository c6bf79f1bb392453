"""Logging that never shows a secret.

Two guards. websockets logs every frame at DEBUG level, and the frames of the rendezvous
protocol carry tokens, TURN credentials and ICE passwords: :func:`websockets_logger` gives
websockets a logger on which DEBUG is never enabled, whatever the application configures.
:class:`RedactingFormatter` replaces known secrets (the tokens the command line was given)
in every formatted line, tracebacks included.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from typing import Any

REDACTED = "[redacted]"


class _NoDebug(logging.LoggerAdapter):  # type: ignore[type-arg]
    """A logger view on which DEBUG is off: websockets then skips its frame dumps."""

    def isEnabledFor(self, level: int) -> bool:
        return level > logging.DEBUG and self.logger.isEnabledFor(level)

    def process(self, msg: Any, kwargs: Any) -> tuple[Any, Any]:
        return msg, kwargs


def websockets_logger(name: str) -> logging.LoggerAdapter:  # type: ignore[type-arg]
    """The logger to hand websockets for our connections: INFO and above only."""
    return _NoDebug(logging.getLogger(name), {})


class RedactingFormatter(logging.Formatter):
    """A formatter that replaces each of ``secrets`` with ``[redacted]`` wherever it stands
    on its own (not inside a longer word: a one-letter test token must not blank every
    such letter of every line)."""

    def __init__(self, fmt: str, secrets: Iterable[str] = ()) -> None:
        super().__init__(fmt)
        found = sorted({s for s in secrets if s}, key=len, reverse=True)
        alternatives = "|".join(re.escape(s) for s in found)
        self._pattern = re.compile(rf"(?<![\w-])(?:{alternatives})(?![\w-])") if found else None

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        return text if self._pattern is None else self._pattern.sub(REDACTED, text)
