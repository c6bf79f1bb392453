"""The in-process backend: rooms, host pools and sessions in this process (the default)."""

from __future__ import annotations

import random
import secrets
from dataclasses import dataclass, field

from .._core import rendezvous as proto
from .._core.rendezvous import RoomKeys
from .backend import Counts, Endpoint, Joined, Share, refusal


@dataclass
class _Session:
    room: str
    host: Endpoint
    client: Endpoint


@dataclass
class _Room:
    keys: RoomKeys
    #: host id -> (host, the ids of its live sessions)
    pool: dict[str, tuple[Endpoint, set[str]]] = field(default_factory=dict)
    sessions: int = 0


class MemoryBackend:
    """Rooms, pools and sessions in this process: one rendezvous instance."""

    kind = "memory"

    def __init__(self, max_rooms: int, max_sessions_per_room: int) -> None:
        self.max_rooms = max_rooms
        self.max_sessions_per_room = max_sessions_per_room
        self._rooms: dict[str, _Room] = {}
        self._sessions: dict[str, _Session] = {}
        self._hosts = 0
        self.instance = secrets.token_hex(6)

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def healthy(self) -> bool:
        return True

    async def register(self, room: str, keys: RoomKeys, host: Endpoint) -> int:
        entry = self._rooms.get(room)
        if entry is None:
            if len(self._rooms) >= self.max_rooms:
                raise refusal(proto.TOO_MANY_ROOMS)
            entry = self._rooms[room] = _Room(keys)
        elif entry.keys != keys:
            raise refusal(proto.ROOM_TAKEN)
        entry.pool[host.id] = (host, set())
        self._hosts += 1
        return len(entry.pool)

    async def unregister(self, room: str, host: Endpoint) -> list[Endpoint]:
        entry = self._rooms.get(room)
        member = entry.pool.pop(host.id, None) if entry is not None else None
        if entry is None or member is None:
            return []
        self._hosts -= 1
        clients = [self._end(session).client for session in member[1]]
        if not entry.pool:
            del self._rooms[room]
        return clients

    async def join(self, room: str, token: str, client: Endpoint) -> Joined:
        entry = self._rooms.get(room)
        # One answer for an unknown room and a wrong token: rooms cannot be probed.
        opens, label = (entry.keys if entry is not None else proto.NO_ROOM).opens(token)
        if not opens or entry is None:
            raise refusal(proto.UNAUTHORIZED)
        if entry.sessions >= self.max_sessions_per_room:
            raise refusal(proto.ROOM_FULL)
        loads = {hid: len(sessions) for hid, (_, sessions) in entry.pool.items()}
        chosen = proto.least_loaded(loads, random.random())
        assert chosen is not None  # a room exists while its pool has a host
        host, sessions = entry.pool[chosen]
        session = secrets.token_urlsafe(12)
        sessions.add(session)
        entry.sessions += 1
        self._sessions[session] = _Session(room, host, client)
        share = Share(len(entry.pool), len(sessions), entry.sessions)
        return Joined(session, host, label, share)

    async def leave(self, session: str, client: Endpoint) -> Endpoint | None:
        found = self._sessions.get(session)
        if found is None or found.client.id != client.id:
            return None
        return self._end(session).host

    async def host_drops(self, session: str, host: Endpoint) -> Endpoint | None:
        found = self._sessions.get(session)
        if found is None or found.host.id != host.id:
            return None
        return self._end(session).client

    async def peer_of(self, session: str, asker: Endpoint) -> Endpoint | None:
        found = self._sessions.get(session)
        if found is None:
            return None
        if asker.id == found.host.id:
            return found.client
        return found.host if asker.id == found.client.id else None

    async def counts(self) -> Counts:
        return Counts(len(self._rooms), len(self._sessions), self._hosts)

    def _end(self, session: str) -> _Session:
        ended = self._sessions.pop(session)
        entry = self._rooms[ended.room]
        entry.sessions -= 1
        member = entry.pool.get(ended.host.id)
        if member is not None:
            member[1].discard(session)
        return ended
