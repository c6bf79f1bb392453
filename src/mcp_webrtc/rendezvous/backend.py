"""Where the rendezvous keeps rooms, host pools and sessions: the backend interface.

Two implementations: :class:`~mcp_webrtc.rendezvous.memory.MemoryBackend` (one process, the
default) and :class:`~mcp_webrtc.rendezvous.redis_backend.RedisBackend` (any number of
rendezvous processes sharing one Redis). Refusals raise :class:`RendezvousRefused`; a
backend that cannot reach its store refuses with ``backend-unavailable``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple, Protocol

from .._core import rendezvous as proto
from .._core.rendezvous import JSONObject, RoomKeys
from ..exceptions import RendezvousRefused

#: What a refusal says, by code (the same whichever backend refuses).
REFUSALS = {
    proto.UNAUTHORIZED: "unknown room or wrong token",
    proto.ROOM_TAKEN: "this room's hosts use another host token or other client tokens",
    proto.TOO_MANY_ROOMS: "the rendezvous holds its maximum of rooms",
    proto.ROOM_FULL: "this room holds its maximum of sessions",
    proto.BACKEND_UNAVAILABLE: "the rendezvous cannot reach its shared store; try again",
}


def refusal(code: str) -> RendezvousRefused:
    return RendezvousRefused(code, REFUSALS[code])


class Endpoint(Protocol):
    """One connected host or client, as the backend sees it.

    ``id`` is unique across every rendezvous instance. ``deliver`` never waits for the
    peer to read: a slow peer is cut off by its own connection, it never delays the sender
    (docs/protocol.md, §7).
    """

    @property
    def id(self) -> str: ...

    async def deliver(self, message: JSONObject) -> None: ...

    async def drop(self, code: str, reason: str) -> None: ...


@dataclass(frozen=True, slots=True)
class Share:
    """A host's share of its room, told in ``peer-joined``: hosts in the room's pool, this
    host's sessions (the new one included), and the room's sessions."""

    hosts: int
    sessions: int
    room_sessions: int

    def as_json(self) -> JSONObject:
        return {"hosts": self.hosts, "sessions": self.sessions, "roomSessions": self.room_sessions}


@dataclass(frozen=True, slots=True)
class Joined:
    """A successful join: the new session, the pool host it went to, the label of the
    client token used (if a labeled one), and that host's share."""

    session: str
    host: Endpoint
    label: str | None
    share: Share


class Counts(NamedTuple):
    """Rooms, sessions and hosts, across every instance sharing the backend."""

    rooms: int
    sessions: int
    hosts: int


class RendezvousBackend(Protocol):
    """Room, pool and session state (see the module docstring)."""

    #: Shown in ``/healthz`` and the metrics: ``"memory"`` or ``"redis"``.
    kind: str
    #: This rendezvous instance's name (random; a new one after losing the shared state).
    instance: str

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def register(self, room: str, keys: RoomKeys, host: Endpoint) -> int:
        """Add ``host`` to the pool of ``room`` (creating the room); the pool's size.
        A room whose pool holds other keys is ``room-taken``."""
        ...

    async def unregister(self, room: str, host: Endpoint) -> list[Endpoint]:
        """Take ``host`` out of its pool; the clients of its sessions (which end)."""
        ...

    async def join(self, room: str, token: str, client: Endpoint) -> Joined: ...

    async def leave(self, session: str, client: Endpoint) -> Endpoint | None:
        """The client of ``session`` left; its host, if the session was live."""
        ...

    async def host_drops(self, session: str, host: Endpoint) -> Endpoint | None:
        """``host`` ends ``session``; its client, if it was that host's live session."""
        ...

    async def peer_of(self, session: str, asker: Endpoint) -> Endpoint | None:
        """The other side of ``session`` when ``asker`` is one side of it, else ``None``."""
        ...

    async def counts(self) -> Counts: ...

    async def healthy(self) -> bool:
        """Whether the backend can take new registrations and joins now."""
        ...
