"""``serve --url``: a Streamable HTTP MCP server behind ``serve``.

Each WebRTC peer gets its own MCP session on the HTTP server, opened by the MCP SDK's
Streamable HTTP client: the peer's requests and notifications are POSTed, the server's
answers, requests (sampling, elicitation, roots) and notifications (progress, logging)
come back on the response streams and the standalone GET stream, and the peer's answers to
the server's requests are POSTed in turn. When the peer leaves, the HTTP session is closed
with a DELETE (bounded by :data:`CLOSE_TIMEOUT`, also when ``serve`` is stopping).

When the server cannot be reached, or stops answering mid-session, the peer's pending
requests, and those it sends in the next :data:`~mcp_webrtc.relay.LINGER` seconds, get a
JSON-RPC error naming the URL and the cause; ``initialize`` first when it was never up.
Header values (credentials, typically) are never logged.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from ._compat import streamable_http_client, streamable_http_opener
from .exceptions import ConfigurationError
from .options import WebRTCOptions
from .relay import Calls, UpstreamGone, cancelled_gently, refuse, relay

logger = logging.getLogger("mcp_webrtc.http_upstream")

#: An HTTP header name (RFC 9110 token).
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")

#: At most this long to close a peer's HTTP session (the DELETE) when it ends; short, so
#: that the peer's bye still fits in serve's own close_timeout when serve stops.
CLOSE_TIMEOUT = 2.0


@dataclass(frozen=True)
class HttpServer:
    """A ``serve`` target: the Streamable HTTP MCP server at ``url`` (``http://`` or
    ``https://``, e.g. ``http://127.0.0.1:8000/mcp``), one HTTP MCP session per peer.

    ``headers`` go with every request (e.g. ``Authorization``); ``max_message_size`` bounds
    one server-sent event (the SDK's own bound is 1 MiB; ours is the session's message
    limit, :attr:`WebRTCOptions.max_message_size`)."""

    url: str
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    max_message_size: int = field(
        default_factory=lambda: WebRTCOptions().max_message_size  # its default, defined once
    )

    def __post_init__(self) -> None:
        streamable_http_opener()  # an mcp that has it, or a ConfigurationError now
        parts = urlsplit(self.url)
        try:
            parts.port  # noqa: B018 - raises ValueError for a port that is not a number
        except ValueError:
            parts = parts._replace(netloc="")
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigurationError(f"--url wants http://host:port/path, got {self.shown}")
        for name, value in self.headers.items():
            if not _TOKEN.fullmatch(name) or any(c < " " and c != "\t" for c in value):
                raise ConfigurationError(f"not a valid HTTP header (name {name!r})")

    @property
    def shown(self) -> str:
        """The URL as logs and peers see it: no user, password, query or fragment (they
        may hold credentials)."""
        parts = urlsplit(self.url)
        host = parts.hostname or ""
        host = f"[{host}]" if ":" in host else host
        try:
            port = f":{parts.port}" if parts.port else ""
        except ValueError:  # not a number: named as such by __post_init__
            port = ""
        return f"{parts.scheme}://{host}{port}{parts.path}"

    async def __call__(self, read: Any, write: Any) -> None:
        """Relay one peer's session (``read``/``write``: its SDK message streams)."""
        calls = Calls()
        try:
            async with (
                cancelled_gently(CLOSE_TIMEOUT) as gentle,
                streamable_http_client(self.url, self.headers, self.max_message_size) as upstream,
            ):
                try:
                    with gentle.work:
                        await relay((read, write), upstream, calls)
                finally:
                    gentle.clean_up()  # the DELETE, within CLOSE_TIMEOUT
            return  # the peer left (or serve stopped): the session was DELETEd
        except Exception as exc:  # the SDK's transport fails as a whole (its task group)
            cause = _cause(exc)
            if isinstance(cause, UpstreamGone):
                reason = f"the MCP server at {self.shown} went away: {cause}"
            else:
                why = str(cause) or type(cause).__name__
                reason = f"the MCP server at {self.shown} is unreachable: {why}"
        logger.warning("%s", reason)
        await refuse(read, write, calls, reason)


def _cause(exc: BaseException) -> BaseException:
    """``exc``, or the first error inside it when it is an exception group (the SDK's
    transport and our relay both run task groups)."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


__all__ = ["CLOSE_TIMEOUT", "HttpServer"]
