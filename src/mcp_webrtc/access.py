"""Who may use what of a served MCP server, and the audit log of what each peer did.

``serve(..., access=Access(...))`` gives every session a :class:`~mcp_webrtc._core.policy.Gate`
chosen by the peer's verified key (``serve --authorized-keys`` with ``tools="..."``
options), and sends one audit record per request to ``audit`` (``serve --audit FILE``).
The gate's rules are pure (:mod:`mcp_webrtc._core.policy`); this module applies them to a
stdio child's lines and to an in-process server's message streams.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import anyio
from mcp.shared.message import SessionMessage

from ._compat import dump_message, parse_message
from ._core.identity import PublicKey
from ._core.policy import Gate, Policy
from .info import ConnectionInfo

__all__ = ["Access", "Policy", "gated"]


@dataclass(frozen=True, slots=True)
class Access:
    """Per-peer policies (by public key, base64) and the audit sink of one ``serve``."""

    #: The policy of each listed key; peers proving another key, or none, get the policy of
    #: the client token label they joined with (``labels``), else ``default``.
    policies: Mapping[str, Policy] = field(default_factory=dict)
    labels: Mapping[str, Policy] = field(default_factory=dict)
    default: Policy = field(default_factory=Policy)
    #: Receives one record (a JSON-ready dict) per request a peer made.
    audit: Callable[[dict[str, Any]], None] | None = None
    #: Whether records carry the request's params and the answer (never by default).
    payloads: bool = False
    #: Also receives every record (without payloads): ``ServeMetrics.observe``.
    metrics: Callable[[dict[str, Any]], None] | None = None

    def gate(self, session: str, info: ConnectionInfo, label: str | None = None) -> Gate | None:
        """The gate for a session whose connection is ``info`` (joined with the client
        token ``label``); ``None`` when there is nothing to enforce or record."""
        key = PublicKey.parse(info.peer_key) if info.peer_key else None
        policy = self.default
        if label is not None:
            policy = self.labels.get(label, policy)
        if key is not None:
            policy = self.policies.get(key.base64, policy)
        if policy.unrestricted and self.audit is None and self.metrics is None:
            return None
        who = f"token:{label}" if label else "token"
        peer = {
            "peer": key.fingerprint if key else who,
            "session": session,
            "path": info.remote_candidate_type,
        }
        return Gate(policy, peer, self._sink(), payloads=self.payloads and self.audit is not None)

    def _sink(self) -> Callable[[dict[str, Any]], None] | None:
        audit, metrics = self.audit, self.metrics
        if audit is None or metrics is None:
            return audit or metrics

        def both(record: dict[str, Any]) -> None:
            metrics(record)
            audit(record)

        return both


Streams = tuple[Any, Any]


@asynccontextmanager
async def gated(
    transport: AbstractAsyncContextManager[Streams], gate_of: Callable[[], Gate | None]
) -> AsyncIterator[Streams]:
    """``transport``'s ``(read, write)`` streams of SDK messages, seen through the gate
    ``gate_of()`` returns once connected (unchanged when it returns ``None``)."""
    async with transport as (read, write):
        gate = gate_of()
        if gate is None:
            yield read, write
            return
        to_server, server_reads = anyio.create_memory_object_stream[SessionMessage | Exception](0)
        server_writes, to_peer = anyio.create_memory_object_stream[SessionMessage](0)

        async def peer_to_server() -> None:
            async with to_server:
                async for item in read:
                    if not isinstance(item, Exception):
                        text = dump_message(item)
                        answer = gate.from_peer(json.loads(text), len(text))
                        if answer is not None:
                            await write.send(parse_message(answer))
                            continue
                    await to_server.send(item)

        async def server_to_peer() -> None:
            async with to_peer:
                async for item in to_peer:
                    text = dump_message(item)
                    message = json.loads(text)
                    shown = gate.from_server(message, len(text))
                    await write.send(item if shown is message else parse_message(json.dumps(shown)))

        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(peer_to_server)
                tg.start_soon(server_to_peer)
                try:
                    yield server_reads, server_writes
                finally:
                    tg.cancel_scope.cancel()
        finally:
            gate.end("the session ended")
