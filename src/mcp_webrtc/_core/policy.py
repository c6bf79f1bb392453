"""What one peer may use of a served MCP server, and the audit record of what it did.

:class:`Gate` sits between a peer and the server it reaches (a stdio child or an
in-process server): every JSON-RPC message from the peer goes through
:meth:`Gate.from_peer`, which refuses a call outside the peer's :class:`Policy` with an
error answer (the server never sees it), and every message from the server through
:meth:`Gate.from_server`, which removes what the peer may not see from list results and
completes the audit record of the request it answers. Pure: dicts in, dicts out.
"""

from __future__ import annotations

import fnmatch
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from .errors import ConfigurationError
from .jsonrpc import RequestId, error_response, request_id_of

#: JSON-RPC error code of a request this peer is not allowed to make.
NOT_ALLOWED = -32051
_OPTION = re.compile(r'\s*(tools|resources|prompts)="([^"]*)"\s*(?:,|$)')

#: For each kind: the method that uses one, the list method, the list result's field,
#: and the field naming an item (in the request's params and in the list's items).
_KINDS = {
    "tools": ("tools/call", "tools/list", "tools", "name"),
    "resources": ("resources/read", "resources/list", "resources", "uri"),
    "prompts": ("prompts/get", "prompts/list", "prompts", "name"),
}
_USE = {use: kind for kind, (use, *_rest) in _KINDS.items()}
_USE["resources/subscribe"] = _USE["resources/unsubscribe"] = "resources"
_LIST = {listing: kind for kind, (_use, listing, *_rest) in _KINDS.items()}


@dataclass(frozen=True, slots=True)
class Policy:
    """Allow-lists per kind: names (or URI patterns, ``fnmatch`` style, for resources);
    ``None`` allows everything of that kind."""

    tools: tuple[str, ...] | None = None
    resources: tuple[str, ...] | None = None
    prompts: tuple[str, ...] | None = None

    @classmethod
    def parse(cls, options: str) -> Policy:
        """Read OpenSSH-style key options: ``tools="a,b",resources="file:///srv/*"``."""
        found: dict[str, tuple[str, ...]] = {}
        rest = options.strip()
        while rest:
            match = _OPTION.match(rest)
            if match is None:
                raise ConfigurationError(f"unknown key option: {rest[:40]!r}")
            found[match.group(1)] = tuple(p.strip() for p in match.group(2).split(",") if p)
            rest = rest[match.end() :].strip()
        return cls(**found)

    @property
    def unrestricted(self) -> bool:
        return self.tools is None and self.resources is None and self.prompts is None

    def allows(self, kind: str, name: object) -> bool:
        allowed: tuple[str, ...] | None = getattr(self, kind)
        if allowed is None:
            return True
        if not isinstance(name, str):
            return False
        if kind == "resources":
            return any(fnmatch.fnmatchcase(name, pattern) for pattern in allowed)
        return name in allowed


@dataclass(slots=True)
class _Pending:
    method: str
    name: str | None
    started: float
    size: int
    params: object


class Gate:
    """One peer's view of the server (see the module docstring). ``audit`` receives one
    record per request the peer made; ``payloads`` adds its params and result to it."""

    def __init__(
        self,
        policy: Policy,
        peer: dict[str, Any],
        audit: Callable[[dict[str, Any]], None] | None = None,
        *,
        payloads: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.policy = policy
        self.peer = peer
        self._audit = audit
        self._payloads = payloads
        self._clock = clock
        self._pending: dict[RequestId, _Pending] = {}

    def from_peer(self, message: object, size: int) -> str | None:
        """The error answer (JSON text) to send back instead of forwarding ``message``, or
        ``None`` to forward it."""
        if not isinstance(message, dict) or "method" not in message or "id" not in message:
            return None  # notifications and answers pass
        method, params = message["method"], message.get("params")
        kind = _USE.get(method) if isinstance(method, str) else None
        name = None
        if kind is not None:
            field = _KINDS[kind][3]
            name = params.get(field) if isinstance(params, dict) else None
        pending = _Pending(str(method), name, self._clock(), size, params)
        request_id = request_id_of(message)  # None for an id JSON-RPC does not allow
        if kind is not None and not self.policy.allows(kind, name):
            why = f"{kind[:-1]} {name!r} is not allowed for this client"
            answer = error_response(request_id, NOT_ALLOWED, why)
            self._record(pending, "refused", len(answer), {"error": why})
            return answer
        if request_id is not None:  # else the server answers it as the invalid request it is
            self._pending[request_id] = pending
        return None

    def from_server(self, message: object, size: int) -> object:
        """``message`` as the peer may see it (list results filtered)."""
        request_id = message.get("id") if isinstance(message, dict) else None
        if not isinstance(request_id, str | int) or isinstance(request_id, bool):
            return message  # not an answer to a request we recorded
        assert isinstance(message, dict)
        pending = None if "method" in message else self._pending.pop(request_id, None)
        if pending is None:
            return message
        kind = _LIST.get(pending.method)
        result = message.get("result")
        if kind is not None and isinstance(result, dict) and getattr(self.policy, kind) is not None:
            field, item_key = _KINDS[kind][2], _KINDS[kind][3]
            items = result.get(field)
            if isinstance(items, list):
                kept = [i for i in items if self.policy.allows(kind, _get(i, item_key))]
                message = {**message, "result": {**result, field: kept}}
        error = message.get("error")
        outcome = f"error {error.get('code')}" if isinstance(error, dict) else "ok"
        self._record(pending, outcome, size, message)
        return message

    def end(self, why: str) -> None:
        """The session ended: requests never answered are recorded as such."""
        for pending in self._pending.values():
            self._record(pending, f"unanswered: {why}", 0, None)
        self._pending.clear()

    def _record(self, pending: _Pending, outcome: str, size: int, answer: object) -> None:
        if self._audit is None:
            return
        record: dict[str, Any] = {
            "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
            **self.peer,
            "method": pending.method,
        }
        if pending.name is not None:
            record["name"] = pending.name
        record["duration_ms"] = round((self._clock() - pending.started) * 1000, 3)
        record.update(bytes_in=pending.size, bytes_out=size, outcome=outcome)
        if self._payloads:
            record["params"] = pending.params
            if isinstance(answer, dict):
                record["answer"] = answer.get("result", answer.get("error"))
        self._audit(record)


def _get(item: object, field: str) -> object:
    return item.get(field) if isinstance(item, dict) else None
