"""Relaying MCP SDK messages between a caller and an upstream that may go away.

``serve --url`` (:mod:`mcp_webrtc.http_upstream`) relays a WebRTC peer to an HTTP MCP
server; ``connect --listen`` (:mod:`mcp_webrtc.listen`) relays an HTTP client to a WebRTC
session. Both keep the same promise as the stdio proxy: when the upstream cannot be reached
or goes away, every request the caller still waits for is answered with a JSON-RPC error
(-32000) naming why, and so is every request it sends after that, for :data:`LINGER`
seconds. Messages are relayed as parsed SDK messages, in order, one at a time each way.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
from mcp.shared.message import ServerMessageMetadata, SessionMessage

from ._compat import classify, message_root, parse_message
from ._core import jsonrpc
from .bridges import too_large_answer
from .exceptions import MessageTooLargeError

logger = logging.getLogger("mcp_webrtc.relay")

#: The MCP SDK's code for a closed connection, used for every request left unanswered.
CONNECTION_CLOSED = -32000
#: After the upstream failed (or a connect did), the caller's requests are answered with
#: why for this long.
LINGER = 10.0

Streams = tuple[Any, Any]


class Calls:
    """The caller's requests that the upstream has not answered yet (by id, in order), and
    the progress tokens they carry."""

    def __init__(self) -> None:
        self._pending: dict[jsonrpc.RequestId, None] = {}
        self._tokens: dict[object, jsonrpc.RequestId] = {}

    def __len__(self) -> int:
        return len(self._pending)

    def asked(self, message: SessionMessage) -> None:
        """Note ``message`` (from the caller) if it is a request; a cancellation settles the
        request it names (servers do not answer cancelled requests)."""
        kind, request_id = classify(message)
        root = message_root(message)
        if kind == "notification" and root.method == "notifications/cancelled":
            cancelled = _params(root).get("requestId")
            if isinstance(cancelled, str | int):
                self.settle(cancelled)
            return
        if kind != "request" or request_id is None:
            return
        self._pending[request_id] = None
        meta = _params(root).get("_meta")
        token = meta.get("progressToken") if isinstance(meta, dict) else None
        if token is not None:
            self._tokens[token] = request_id

    def answered(self, message: SessionMessage) -> None:
        """Forget the request ``message`` (from the upstream) answers, if it is a response."""
        kind, request_id = classify(message)
        if kind == "response" and request_id is not None:
            self.settle(request_id)

    def settle(self, request_id: jsonrpc.RequestId) -> None:
        """Forget ``request_id``: it was answered."""
        self._pending.pop(request_id, None)
        for token in [t for t, rid in self._tokens.items() if rid == request_id]:
            del self._tokens[token]

    def related(self, message: SessionMessage) -> jsonrpc.RequestId | None:
        """The caller's request a message from the upstream belongs to: the request whose
        progress token a progress notification names; for any other request or
        notification, the latest request still pending (an HTTP server delivers such
        messages on that request's stream, which the caller surely reads); ``None`` for
        responses (routed by their own id) and when nothing is pending."""
        kind, _ = classify(message)
        if kind == "response" or not self._pending:
            return None
        root = message_root(message)
        if getattr(root, "method", None) == "notifications/progress":
            token = _params(root).get("progressToken")
            if token in self._tokens:
                return self._tokens[token]
        return next(reversed(self._pending))

    async def fail(self, write: Any, reason: str, code: int = CONNECTION_CLOSED) -> None:
        """Answer every pending request on ``write`` with an error naming ``reason``."""
        for request_id in list(self._pending):
            self.settle(request_id)
            answer = jsonrpc.error_response(request_id, code, reason)
            try:
                await write.send(parse_message(answer))
            except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                return


def _params(root: Any) -> dict[str, Any]:
    """A request's or notification's params, as a dict (empty when absent)."""
    params = getattr(root, "params", None)
    return params if isinstance(params, dict) else {}


Tag = Callable[[SessionMessage], SessionMessage]


def tag_related(calls: Calls) -> Tag:
    """For an HTTP server transport: mark each message with the request it belongs to (see
    :meth:`Calls.related`), so it travels on that request's response stream."""

    def tag(message: SessionMessage) -> SessionMessage:
        related = calls.related(message)
        if related is None:
            return message
        return SessionMessage(message.message, ServerMessageMetadata(related_request_id=related))

    return tag


class UpstreamGone(Exception):
    """The upstream ended; ``args[0]`` says why (internal to the relays)."""


async def relay(caller: Streams, upstream: Streams, calls: Calls, tag: Tag | None = None) -> None:
    """Relay both ways until the caller's read stream ends (returns) or the upstream's
    does or refuses a message (raises :class:`UpstreamGone`). Requests too large for the
    upstream are answered with -32050 and the relay goes on."""
    (caller_read, caller_write), (up_read, up_write) = caller, upstream
    gone: list[str] = []
    async with anyio.create_task_group() as tg:

        async def to_upstream() -> None:
            async for item in _until_closed(caller_read):
                if not isinstance(item, SessionMessage):
                    logger.warning("dropping an unparsable message from the caller: %s", item)
                    continue
                calls.asked(item)
                try:
                    await up_write.send(item)
                except MessageTooLargeError as exc:
                    request_id = classify(item)[1]
                    if request_id is not None:
                        calls.settle(request_id)
                    if not await _too_large(item, exc, caller_write):
                        break  # the caller is gone
                except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                    gone.append("it stopped accepting messages")
                    break
            tg.cancel_scope.cancel()

        async def to_caller() -> None:
            async for item in _until_closed(up_read):
                if not isinstance(item, SessionMessage):
                    logger.warning("upstream: %s", item)
                    continue
                calls.answered(item)
                try:
                    await caller_write.send(tag(item) if tag else item)
                except MessageTooLargeError as exc:
                    if not await _too_large(item, exc, up_write):
                        gone.append("it stopped accepting messages")
                        break
                except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                    break  # the caller is gone
            else:
                gone.append("it closed the session")
            tg.cancel_scope.cancel()

        tg.start_soon(to_upstream)
        tg.start_soon(to_caller)
    if gone:
        raise UpstreamGone(gone[0])


async def _too_large(item: SessionMessage, exc: MessageTooLargeError, back: Any) -> bool:
    """``item`` could not be forwarded: a request is answered on ``back`` (-32050), anything
    else dropped with a log line. Whether ``back`` still takes messages."""
    kind, request_id = classify(item)
    logger.warning("%s not forwarded: %s", kind, exc)
    if kind != "request" or request_id is None:
        return True
    try:
        await back.send(parse_message(too_large_answer(request_id, exc)))
    except (anyio.BrokenResourceError, anyio.ClosedResourceError):
        return False
    return True


async def _until_closed(stream: Any) -> AsyncIterator[Any]:
    """The items of ``stream`` until it ends or is closed (an HTTP session terminated)."""
    try:
        async for item in stream:
            yield item
    except (anyio.BrokenResourceError, anyio.ClosedResourceError):
        return


async def refuse(read: Any, write: Any, calls: Calls, reason: str) -> None:
    """The upstream is gone: answer the pending requests with ``reason``, then every request
    the caller sends, until it leaves or :data:`LINGER` seconds pass."""
    await calls.fail(write, reason)
    with anyio.move_on_after(LINGER):
        async for item in _until_closed(read):
            if isinstance(item, SessionMessage):
                calls.asked(item)
                await calls.fail(write, reason)


class Gentle:
    """What :func:`cancelled_gently` yields: ``work``, the scope to run the work in, and
    :meth:`clean_up`, to call when the work is over (the cleanup then has ``grace``)."""

    def __init__(self, guard: anyio.CancelScope, grace: float) -> None:
        self.work = anyio.CancelScope()
        self._guard, self._grace = guard, grace

    def clean_up(self) -> None:
        """The work is over or must stop: the cleanup has ``grace`` seconds from now."""
        self.work.cancel()
        deadline = anyio.current_time() + self._grace
        self._guard.deadline = min(self._guard.deadline, deadline)


@asynccontextmanager
async def cancelled_gently(grace: float) -> AsyncIterator[Gentle]:
    """Shield the body from outside cancellation, which instead cancels the work scope
    and leaves the body ``grace`` seconds to clean up: an HTTP session still gets its
    DELETE, within ``grace``, when ``serve`` stops."""
    async with anyio.create_task_group() as tg:
        with anyio.CancelScope(shield=True) as guard:
            gentle = Gentle(guard, grace)

            async def watch() -> None:
                try:
                    await anyio.sleep_forever()
                finally:
                    gentle.clean_up()

            tg.start_soon(watch)
            try:
                yield gentle
            finally:
                tg.cancel_scope.cancel()


__all__ = [
    "CONNECTION_CLOSED",
    "LINGER",
    "Calls",
    "Gentle",
    "UpstreamGone",
    "cancelled_gently",
    "refuse",
    "relay",
    "tag_related",
]
