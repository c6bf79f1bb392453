"""The rendezvous protocol's messages, limits and credentials (see docs/protocol.md, §7).

Pure code: parsing and building JSON messages, constant-time token checks, coturn REST
credentials. No I/O.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from .errors import ConfigurationError, ProtocolError

PROTOCOL_VERSION = 1

#: Rooms are names, not secrets: letters, digits and ``-_.``, 1 to 128 characters.
ROOM_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}")  # use fullmatch
MAX_TOKEN_LENGTH = 512
#: Labeled client tokens a room may have, and what a label may hold.
MAX_LABELED_TOKENS = 64
LABEL_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@\-]{0,63}")  # use fullmatch

# Error codes sent in {"type": "error", "code": ...}; fatal ones close the connection.
UNAUTHORIZED = "unauthorized"  # bad host token, or unknown room / bad client token (one answer)
ROOM_TAKEN = "room-taken"
ROOM_FULL = "room-full"
TOO_MANY_ROOMS = "too-many-rooms"
RATE_LIMITED = "rate-limited"
BAD_MESSAGE = "bad-message"
UNKNOWN_SESSION = "unknown-session"
HOST_LEFT = "host-left"
BACKEND_UNAVAILABLE = "backend-unavailable"  # the shared store (Redis) cannot be reached

#: WebSocket close codes used when the rendezvous refuses a connection.
CLOSE_POLICY = 1008  # refused: unauthorized, limits
CLOSE_TOO_BIG = 1009  # message above the size limit (websockets sends it itself)

JSONObject = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Register:
    room: str
    token: str
    client_token: str
    #: Further client tokens, by label: the host learns which one a client joined with.
    labeled_tokens: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class Join:
    room: str
    token: str


@dataclass(frozen=True, slots=True)
class SignalMessage:
    session: str | None
    signal: JSONObject


@dataclass(frozen=True, slots=True)
class Leave:
    session: str | None


Inbound = Register | Join | SignalMessage | Leave


def _text(obj: JSONObject, key: str, limit: int = MAX_TOKEN_LENGTH) -> str:
    value = obj.get(key)
    if not isinstance(value, str) or not value or len(value) > limit:
        raise ProtocolError(f"{key!r} must be a non-empty string of at most {limit} characters")
    return value


def _labeled_tokens(value: object) -> tuple[tuple[str, str], ...]:
    if not isinstance(value, dict) or len(value) > MAX_LABELED_TOKENS:
        raise ProtocolError(
            f"'clientTokens' must be an object of at most {MAX_LABELED_TOKENS} label: token"
        )
    pairs = []
    for label, token in value.items():
        if not LABEL_PATTERN.fullmatch(label):
            raise ProtocolError("a client token label may hold letters, digits and -_.@ only")
        pairs.append((label, _text({"t": token}, "t")))
    return tuple(pairs)


def _room(obj: JSONObject) -> str:
    room = _text(obj, "room", 128)
    if not ROOM_PATTERN.fullmatch(room):
        raise ProtocolError("'room' may hold letters, digits and -_. only")
    return room


def parse_inbound(text: str | bytes) -> Inbound:
    """Parse one message from a host or client. Raises :class:`ProtocolError`."""
    try:
        obj = json.loads(text)
    except (ValueError, RecursionError):
        raise ProtocolError("not JSON (or nested too deeply)") from None
    if not isinstance(obj, dict):
        raise ProtocolError("not a JSON object")
    kind = obj.get("type")
    if kind == "register":
        labeled = _labeled_tokens(obj.get("clientTokens", {}))
        return Register(_room(obj), _text(obj, "token"), _text(obj, "clientToken"), labeled)
    if kind == "join":
        return Join(_room(obj), _text(obj, "token"))
    if kind == "signal":
        signal = obj.get("signal")
        if not isinstance(signal, dict):
            raise ProtocolError("'signal' must be a JSON object")
        session = obj.get("session")
        if session is not None and not isinstance(session, str):
            raise ProtocolError("'session' must be a string")
        return SignalMessage(session, signal)
    if kind == "leave":
        session = obj.get("session")
        return Leave(session if isinstance(session, str) else None)
    raise ProtocolError(f"unknown message type {short(kind)}")


def short(value: object, limit: int = 40) -> str:
    """``repr(value)`` cut to ``limit`` characters: error answers never echo much input."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def dumps(obj: JSONObject) -> str:
    return json.dumps(obj, separators=(",", ":"))


def error(code: str, message: str, **extra: Any) -> JSONObject:
    return {"type": "error", "code": code, "message": message, **extra}


def token_digest(token: str) -> bytes:
    """What the rendezvous keeps of a token: its SHA-256, compared in constant time."""
    return hashlib.sha256(token.encode("utf-8")).digest()


def token_matches(token: str, digest: bytes) -> bool:
    return hmac.compare_digest(token_digest(token), digest)


def token_in(token: str, digests: frozenset[bytes] | set[bytes]) -> bool:
    """Constant time in the token; checks every digest so timing tells nothing."""
    candidate = token_digest(token)
    found = False
    for digest in digests:
        found |= hmac.compare_digest(candidate, digest)
    return found


@dataclass(frozen=True, slots=True)
class RoomKeys:
    """What a room is opened with: digests of its host token, its client token and its
    labeled client tokens. Every host of a room's pool must present the same."""

    host: bytes
    client: bytes
    labeled: tuple[tuple[str, bytes], ...] = ()

    @classmethod
    def of(cls, register: Register) -> RoomKeys:
        labeled = tuple(sorted((label, token_digest(t)) for label, t in register.labeled_tokens))
        return cls(token_digest(register.token), token_digest(register.client_token), labeled)

    def opens(self, token: str) -> tuple[bool, str | None]:
        """Whether ``token`` opens the room, and the label it carries; constant time in
        which digest matched (every one is compared)."""
        opens = token_matches(token, self.client)
        found = None
        for label, digest in self.labeled:
            if token_matches(token, digest):
                opens, found = True, label
        return opens, found


#: Keys no token opens: what an unknown room is checked against, so it answers in the
#: same time as a wrong token.
NO_ROOM = RoomKeys(token_digest("\0host"), token_digest("\0client"))


def least_loaded(loads: dict[str, int], pick: float) -> str | None:
    """The pool member with the fewest sessions; ties broken by ``pick`` in [0, 1)."""
    if not loads:
        return None
    fewest = min(loads.values())
    ties = sorted(name for name, load in loads.items() if load == fewest)
    return ties[min(int(pick * len(ties)), len(ties) - 1)]


def rendezvous_urls(url: str | Sequence[str]) -> tuple[str, ...]:
    """The rendezvous URLs to try in order: a sequence, or one string of comma-separated
    URLs (``"ws://a:8765/,ws://b:8765/"``), as the command line takes them."""
    parts = url.split(",") if isinstance(url, str) else list(url)
    urls = tuple(part.strip() for part in parts if part.strip())
    if not urls:
        raise ConfigurationError("no rendezvous URL given")
    return urls


def turn_rest_credentials(
    secret: str, name: str, ttl: float, now: float | None = None
) -> tuple[str, str]:
    """coturn ``use-auth-secret`` credentials: ``(expiry:name, base64(HMAC-SHA1))``."""
    expiry = int((time.time() if now is None else now) + ttl)
    username = f"{expiry}:{name}"
    mac = hmac.new(secret.encode("utf-8"), username.encode("utf-8"), hashlib.sha1).digest()
    return username, base64.b64encode(mac).decode("ascii")


Side = Literal["host", "client"]
