"""Where the rendezvous keeps rooms and sessions: the backend interface and its in-memory
implementation (the default; one process)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Protocol

from .._core import rendezvous as proto
from .._core.rendezvous import JSONObject
from ..exceptions import RendezvousRefused


class Endpoint(Protocol):
    """One connected host or client, as the backend sees it.

    ``deliver`` never waits for the peer to read: a slow peer is cut off by its own
    connection, it never delays the sender (docs/protocol.md, §7).
    """

    async def deliver(self, message: JSONObject) -> None: ...

    async def drop(self, code: str, reason: str) -> None: ...


class RendezvousBackend(Protocol):
    """Room and session state. :class:`MemoryBackend` keeps it in this process; a shared
    backend (Redis, a database) can implement the same methods to spread hosts and clients
    over several rendezvous processes. Refusals raise :class:`RendezvousRefused`."""

    async def register(
        self,
        room: str,
        client_digest: bytes,
        host: Endpoint,
        labeled: tuple[tuple[str, bytes], ...] = (),
    ) -> None: ...

    async def unregister(self, room: str, host: Endpoint) -> list[Endpoint]: ...

    async def join(
        self, room: str, token: str, client: Endpoint
    ) -> tuple[str, Endpoint, str | None]: ...

    async def leave(self, session: str) -> Endpoint | None: ...

    async def host_drops(self, room: str, session: str) -> Endpoint | None: ...

    async def peer_of(
        self, session: str, side: proto.Side, room: str | None
    ) -> Endpoint | None: ...

    async def counts(self) -> tuple[int, int]: ...


@dataclass
class _Room:
    client_digest: bytes
    host: Endpoint
    labeled: tuple[tuple[str, bytes], ...] = ()
    sessions: dict[str, Endpoint] = field(default_factory=dict)

    def label_of(self, token: str) -> tuple[bool, str | None]:
        """Whether ``token`` opens the room, and the label it carries (constant time in
        which one matched: every digest is compared)."""
        opens = proto.token_matches(token, self.client_digest)
        found = None
        for label, digest in self.labeled:
            if proto.token_matches(token, digest):
                opens, found = True, label
        return opens, found


class MemoryBackend:
    """In-process rooms and sessions (the default)."""

    def __init__(self, max_rooms: int, max_sessions_per_room: int) -> None:
        self.max_rooms = max_rooms
        self.max_sessions_per_room = max_sessions_per_room
        self._rooms: dict[str, _Room] = {}
        self._sessions: dict[str, str] = {}  # session -> room

    async def register(
        self,
        room: str,
        client_digest: bytes,
        host: Endpoint,
        labeled: tuple[tuple[str, bytes], ...] = (),
    ) -> None:
        if room in self._rooms:
            raise RendezvousRefused(proto.ROOM_TAKEN, "this room already has a host")
        if len(self._rooms) >= self.max_rooms:
            raise RendezvousRefused(
                proto.TOO_MANY_ROOMS, "the rendezvous holds its maximum of rooms"
            )
        self._rooms[room] = _Room(client_digest, host, labeled)

    async def unregister(self, room: str, host: Endpoint) -> list[Endpoint]:
        entry = self._rooms.get(room)
        if entry is None or entry.host is not host:
            return []
        del self._rooms[room]
        for session in entry.sessions:
            self._sessions.pop(session, None)
        return list(entry.sessions.values())

    async def join(
        self, room: str, token: str, client: Endpoint
    ) -> tuple[str, Endpoint, str | None]:
        entry = self._rooms.get(room)
        # One answer for an unknown room and a wrong token: rooms cannot be probed.
        opens, label = (entry or _Room(proto.token_digest("\0"), client)).label_of(token)
        if not opens or entry is None:
            raise RendezvousRefused(proto.UNAUTHORIZED, "unknown room or wrong token")
        if len(entry.sessions) >= self.max_sessions_per_room:
            raise RendezvousRefused(proto.ROOM_FULL, "this room holds its maximum of sessions")
        session = secrets.token_urlsafe(12)
        entry.sessions[session] = client
        self._sessions[session] = room
        return session, entry.host, label

    async def leave(self, session: str) -> Endpoint | None:
        room = self._sessions.pop(session, None)
        entry = self._rooms.get(room) if room is not None else None
        if entry is None:
            return None
        entry.sessions.pop(session, None)
        return entry.host

    async def host_drops(self, room: str, session: str) -> Endpoint | None:
        entry = self._rooms.get(room)
        if entry is None or session not in entry.sessions:
            return None
        self._sessions.pop(session, None)
        return entry.sessions.pop(session)

    async def peer_of(self, session: str, side: proto.Side, room: str | None) -> Endpoint | None:
        found = self._sessions.get(session)
        if found is None or (room is not None and found != room):
            return None
        entry = self._rooms[found]
        return entry.sessions.get(session) if side == "host" else entry.host

    async def counts(self) -> tuple[int, int]:
        return len(self._rooms), len(self._sessions)
