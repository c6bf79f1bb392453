"""The shared backend: rooms, host pools and sessions in Redis, for any number of
rendezvous instances (``mcp-webrtc signal --redis URL``).

Each instance has a random name, a heartbeat key that expires after ``instance_ttl``, and
an inbox (a Redis stream) that only it reads. A message for a peer connected to another
instance is appended to that instance's inbox; one reader per instance delivers them in
stream order, each once: signals of a session keep their order and are never repeated
(nothing is retried: a failed append is reported to the sender instead).

An instance whose heartbeat expired is reaped by the next live instance that notices: its
hosts leave their pools (their clients get ``host-left``), its clients' sessions end (their
hosts get ``peer-left``). An instance that finds its own state gone (Redis restarted empty,
or it was presumed dead) disconnects its peers, which register or join again, and starts
over under a new name. With Redis unreachable, registers and joins are refused with
``backend-unavailable``; WebRTC sessions already established never depended on it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import secrets
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any, TypeVar

from redis.asyncio import Redis
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from redis.retry import Retry

from .._core import rendezvous as proto
from .._core.rendezvous import JSONObject, RoomKeys
from ..exceptions import RendezvousRefused
from . import _redis_scripts as scripts
from .backend import Counts, Endpoint, Joined, Share, refusal
from .config import RendezvousConfig

logger = logging.getLogger("mcp_webrtc.rendezvous")

T = TypeVar("T")
#: Entries an inbox keeps at most (roughly) while its instance is slow to read them.
INBOX_LENGTH = 100_000
#: How long the inbox reader blocks on an empty inbox, in milliseconds.
_BLOCK_MS = 1000


@dataclass(frozen=True, slots=True)
class _Remote:
    """A peer connected to some instance, reached through that instance's inbox."""

    id: str
    instance: str
    backend: RedisBackend

    async def deliver(self, message: JSONObject) -> None:
        await self.backend.send(self.instance, self.id, "deliver", message)

    async def drop(self, code: str, reason: str) -> None:
        await self.backend.send(self.instance, self.id, "drop", {"code": code, "reason": reason})


class RedisBackend:
    """Rooms, pools and sessions in Redis (see the module docstring)."""

    kind = "redis"

    def __init__(self, config: RendezvousConfig) -> None:
        assert config.redis_url is not None
        self._config = config
        self._prefix = config.redis_prefix
        # No retries: a command that reached Redis is never sent twice (signals exactly once).
        options: dict[str, Any] = {"decode_responses": True, "retry": Retry(NoBackoff(), 0)}
        timeout = config.backend_timeout
        # redis-py's annotations ignore decode_responses (every reply is str here): Any.
        self._redis: Any = Redis.from_url(
            config.redis_url, socket_timeout=timeout, socket_connect_timeout=timeout, **options
        )
        # The inbox reader blocks for up to a second: its own connection, a longer timeout.
        self._reader: Any = Redis.from_url(
            config.redis_url,
            socket_timeout=timeout + _BLOCK_MS / 1000,
            socket_connect_timeout=timeout,
            **options,
        )
        self._scripts: dict[str, Any] = {
            name: self._redis.register_script(getattr(scripts, name))
            for name in ("REGISTER", "UNREGISTER", "JOIN", "END_SESSION", "REAP")
        }
        self.instance = secrets.token_hex(6)
        self._ttl_ms = int(config.instance_ttl * 1000)
        self._announced = False
        self._local: dict[str, Endpoint] = {}
        #: Hosts and client sessions that left while Redis was unreachable, to end later.
        self._orphans: list[tuple[str, list[str | int]]] = []
        self._tasks: list[asyncio.Task[None]] = []

    def _key(self, *parts: str) -> str:
        return ":".join((self._prefix, *parts))

    # ---------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        with contextlib.suppress(RendezvousRefused):  # Redis down: the heartbeat retries
            await self._announce()
        self._tasks = [
            asyncio.create_task(self._heartbeat()),
            asyncio.create_task(self._read_inbox()),
        ]

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        with contextlib.suppress(RedisError, OSError):  # leave at once, not after the ttl
            await self._redis.delete(self._key("alive", self.instance))
            await self._reap(self.instance)
        await self._redis.aclose()
        await self._reader.aclose()

    async def healthy(self) -> bool:
        try:
            return bool(await self._call(self._redis.ping())) and self._announced
        except RendezvousRefused:
            return False

    async def _call(self, call: Awaitable[T]) -> T:
        try:
            return await call
        except (RedisError, OSError) as exc:
            logger.warning("event=backend-error error=%s", type(exc).__name__)
            raise refusal(proto.BACKEND_UNAVAILABLE) from None

    async def _announce(self) -> None:
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.set(self._key("alive", self.instance), "1", px=self._ttl_ms)
            pipe.sadd(self._key("instances"), self.instance)
            await self._call(pipe.execute())
        self._announced = True
        logger.info("event=instance-up instance=%s", self.instance)

    async def _heartbeat(self) -> None:
        while True:
            alive = self._key("alive", self.instance)  # a new name after starting over
            try:
                if not self._announced:
                    await self._announce()
                elif not await self._call(self._redis.set(alive, "1", px=self._ttl_ms, xx=True)):
                    await self._start_over()
                await self._end_orphans()
                for instance in await self._call(self._redis.smembers(self._key("instances"))):
                    if instance != self.instance:
                        await self._reap(instance)
            except RendezvousRefused:
                pass  # logged by _call; new joins are refused meanwhile
            await asyncio.sleep(self._config.instance_ttl / 3)

    async def _start_over(self) -> None:
        """Our state in Redis is gone: disconnect our peers and take a new name."""
        logger.warning(
            "event=instance-lost instance=%s reason=%s",
            self.instance,
            "state gone from Redis (restarted, or this instance was presumed dead)",
        )
        local, self._local = self._local, {}
        self.instance, self._announced = secrets.token_hex(6), False
        for endpoint in local.values():
            await endpoint.drop(proto.BACKEND_UNAVAILABLE, "the rendezvous lost its state")
        await self._announce()

    async def _reap(self, instance: str) -> None:
        """End what a dead instance held; tell the peers on the other side."""
        out = await self._call(self._scripts["REAP"](args=[self._prefix, instance]))
        if out:
            logger.info("event=reaped instance=%s sessions=%d", instance, len(out) // 4)
        for i in range(0, len(out), 4):
            await self._tell(*out[i : i + 4])

    async def _end_orphans(self) -> None:
        """End what left while Redis was unreachable (else its hosts would get joins)."""
        while self._orphans:
            script, args = self._orphans[0]
            ended = await self._call(self._scripts[script](args=args))
            self._orphans.pop(0)
            if script == "UNREGISTER":
                for i in range(0, len(ended), 3):
                    await self._tell("host-left", *ended[i : i + 3])
            elif ended:
                await self._tell("peer-left", str(args[1]), *ended)

    async def _tell(self, what: str, session: str, peer: str, where: str) -> None:
        """Tell the other side of a session that ended without passing through it: a
        client that its host left (``host-left``), a host that its client did."""
        endpoint = self._resolve(peer, where)
        with contextlib.suppress(RendezvousRefused):
            if what == "host-left":
                await endpoint.drop(proto.HOST_LEFT, "the host left the room")
            else:
                await endpoint.deliver({"type": "peer-left", "session": session})

    async def _run_or_later(self, script: str, args: list[str | int]) -> list[str]:
        """Run a script that ends something; if Redis is unreachable, end it later."""
        try:
            result: list[str] = await self._call(self._scripts[script](args=args))
        except RendezvousRefused:
            self._orphans.append((script, args))
            raise
        return result

    # ---------------------------------------------------------------- delivery

    def _resolve(self, peer: str, instance: str) -> Endpoint:
        local = self._local.get(peer) if instance == self.instance else None
        return local if local is not None else _Remote(peer, instance, self)

    async def send(self, instance: str, peer: str, op: str, body: JSONObject) -> None:
        """Append a message for ``peer`` to ``instance``'s inbox (or hand it over here)."""
        if instance == self.instance:
            local = self._local.get(peer)
            if local is not None:
                await _apply(local, op, body)
            return
        entry = {"to": peer, "op": op, "body": proto.dumps(body)}
        inbox = self._key("inbox", instance)
        await self._call(self._redis.xadd(inbox, entry, maxlen=INBOX_LENGTH, approximate=True))

    async def _read_inbox(self) -> None:
        last, instance, pause = "0-0", self.instance, 0.1
        while True:
            if instance != self.instance:  # started over under a new name
                last, instance = "0-0", self.instance
            inbox = self._key("inbox", instance)
            try:
                batches = await self._reader.xread({inbox: last}, count=500, block=_BLOCK_MS)
            except (RedisError, OSError):
                await asyncio.sleep(pause)
                pause = min(pause * 2, 2.0)
                continue
            pause = 0.1
            for _, entries in batches:
                for entry_id, fields in entries:
                    last = entry_id
                    local = self._local.get(fields.get("to", ""))
                    if local is not None:
                        await _apply(local, fields.get("op", ""), json.loads(fields["body"]))
            if batches:
                with contextlib.suppress(RedisError, OSError):
                    await self._reader.xtrim(inbox, minid=last)  # what was read is done

    # ---------------------------------------------------------------- Backend

    async def register(self, room: str, keys: RoomKeys, host: Endpoint) -> int:
        labeled = json.dumps([[label, digest.hex()] for label, digest in keys.labeled])
        args: list[str | int] = [self._prefix, room, keys.host.hex(), keys.client.hex(), labeled]
        args += [host.id, self.instance, self._config.max_rooms, secrets.token_hex(8)]
        result = await self._call(self._scripts["REGISTER"](args=args))
        if result[0] == "err":
            raise refusal(result[1])
        self._local[host.id] = host
        return int(result[1])

    async def unregister(self, room: str, host: Endpoint) -> list[Endpoint]:
        if self._local.pop(host.id, None) is None:
            return []
        ended = await self._run_or_later("UNREGISTER", [self._prefix, host.id])
        return [self._resolve(ended[i + 1], ended[i + 2]) for i in range(0, len(ended), 3)]

    async def join(self, room: str, token: str, client: Endpoint) -> Joined:
        fields = ("host", "client", "labeled", "epoch")
        stored = await self._call(self._redis.hmget(self._key("room", room), fields))
        keys = _room_keys(stored) if stored[0] is not None else proto.NO_ROOM
        opens, label = keys.opens(token)  # timing is the same for an unknown room
        if not opens or stored[0] is None:
            raise refusal(proto.UNAUTHORIZED)
        session = secrets.token_urlsafe(12)
        args = [self._prefix, room, stored[3], self._config.max_sessions_per_room, session]
        args += [client.id, self.instance, random.random()]
        result = await self._call(self._scripts["JOIN"](args=args))
        if result[0] == "err":
            raise refusal(result[1])
        self._local[client.id] = client
        _, host, where, hosts, sessions, total = result
        share = Share(int(hosts), int(sessions), int(total))
        return Joined(session, self._resolve(host, where), label, share)

    async def leave(self, session: str, client: Endpoint) -> Endpoint | None:
        if self._local.pop(client.id, None) is None:
            return None
        args: list[str | int] = [self._prefix, session, "client", client.id]
        other = await self._run_or_later("END_SESSION", args)
        return self._resolve(other[0], other[1]) if other else None

    async def host_drops(self, session: str, host: Endpoint) -> Endpoint | None:
        args = [self._prefix, session, "host", host.id]
        other = await self._call(self._scripts["END_SESSION"](args=args))
        return self._resolve(other[0], other[1]) if other else None

    async def peer_of(self, session: str, asker: Endpoint) -> Endpoint | None:
        fields = ("host", "hinst", "client", "cinst")
        host, hinst, client, cinst = await self._call(
            self._redis.hmget(self._key("sess", session), fields)
        )
        if host is not None and asker.id == host:
            return self._resolve(client, cinst)
        if client is not None and asker.id == client:
            return self._resolve(host, hinst)
        return None

    async def counts(self) -> Counts:
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.scard(self._key("rooms"))
            pipe.get(self._key("count", "sessions"))
            pipe.get(self._key("count", "hosts"))
            rooms, sessions, hosts = await self._call(pipe.execute())
        return Counts(int(rooms), int(sessions or 0), int(hosts or 0))


async def _apply(endpoint: Endpoint, op: str, body: JSONObject) -> None:
    if op == "deliver":
        await endpoint.deliver(body)
    elif op == "drop":
        await endpoint.drop(str(body.get("code")), str(body.get("reason")))


def _room_keys(stored: list[str]) -> RoomKeys:
    labeled = tuple((label, bytes.fromhex(digest)) for label, digest in json.loads(stored[2]))
    return RoomKeys(bytes.fromhex(stored[0]), bytes.fromhex(stored[1]), labeled)
