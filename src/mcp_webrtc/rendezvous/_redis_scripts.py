"""The Redis backend's Lua scripts: each change of rooms, pools and sessions is one atomic
script, so instances sharing a Redis never see half of one.

Keys (``P`` is ``RendezvousConfig.redis_prefix``; room names and ids never contain ``:``):

- ``P:rooms`` set of room names; ``P:room:R`` hash: ``host``, ``client`` (hex SHA-256
  digests), ``labeled`` (JSON ``[[label, hex digest], ...]``), ``epoch``, ``sessions``
- ``P:pool:R`` sorted set: host id -> its live sessions
- ``P:host:H`` hash: ``room``, ``inst``; ``P:hsess:H`` set of its sessions
- ``P:sess:S`` hash: ``room``, ``host``, ``hinst``, ``client``, ``cinst``
- ``P:instances`` set; ``P:alive:I`` heartbeat (expires); ``P:ihosts:I``, ``P:iclients:I``
  the hosts and client sessions connected to instance I; ``P:inbox:I`` its stream
- ``P:count:sessions``, ``P:count:hosts`` counters

Every script takes ``P`` as ``ARGV[1]``. Only a standalone Redis is supported (the keys are
computed inside the scripts, which Redis Cluster does not allow).
"""

from __future__ import annotations

_PRELUDE = """
local P = ARGV[1]
local function k(...) return P .. ':' .. table.concat({...}, ':') end
local function alive(inst) return redis.call('EXISTS', k('alive', inst)) == 1 end

-- End session sid; its fields {room, host, hinst, client, cinst}, or nil if it was gone.
local function end_session(sid)
  local s = redis.call('HMGET', k('sess', sid), 'room', 'host', 'hinst', 'client', 'cinst')
  if not s[1] then return nil end
  redis.call('DEL', k('sess', sid))
  redis.call('SREM', k('hsess', s[2]), sid)
  redis.call('SREM', k('iclients', s[5]), sid)
  if redis.call('ZSCORE', k('pool', s[1]), s[2]) then
    redis.call('ZINCRBY', k('pool', s[1]), -1, s[2])
  end
  if redis.call('EXISTS', k('room', s[1])) == 1 then
    redis.call('HINCRBY', k('room', s[1]), 'sessions', -1)
  end
  redis.call('DECR', k('count', 'sessions'))
  return s
end

-- Take host hid out of its pool, ending its sessions: {sid, client, cinst, ...}.
local function remove_host(hid)
  local h = redis.call('HMGET', k('host', hid), 'room', 'inst')
  if not h[1] then return {} end
  local ended = {}
  for _, sid in ipairs(redis.call('SMEMBERS', k('hsess', hid))) do
    local s = end_session(sid)
    if s then
      table.insert(ended, sid); table.insert(ended, s[4]); table.insert(ended, s[5])
    end
  end
  redis.call('DEL', k('hsess', hid), k('host', hid))
  redis.call('SREM', k('ihosts', h[2]), hid)
  redis.call('ZREM', k('pool', h[1]), hid)
  redis.call('DECR', k('count', 'hosts'))
  if redis.call('ZCARD', k('pool', h[1])) == 0 then
    redis.call('DEL', k('pool', h[1]), k('room', h[1]))
    redis.call('SREM', k('rooms'), h[1])
  end
  return ended
end
"""

#: ARGV: P, room, host digest, client digest, labeled, host id, instance, max rooms, epoch
REGISTER = (
    _PRELUDE
    + """
local room, hid, inst = ARGV[2], ARGV[6], ARGV[7]
if not alive(inst) then return {'err', 'backend-unavailable'} end
local rk = k('room', room)
if redis.call('EXISTS', rk) == 1 then
  local cur = redis.call('HMGET', rk, 'host', 'client', 'labeled')
  if cur[1] ~= ARGV[3] or cur[2] ~= ARGV[4] or cur[3] ~= ARGV[5] then
    return {'err', 'room-taken'}
  end
else
  if redis.call('SCARD', k('rooms')) >= tonumber(ARGV[8]) then
    return {'err', 'too-many-rooms'}
  end
  redis.call('HSET', rk, 'host', ARGV[3], 'client', ARGV[4], 'labeled', ARGV[5],
             'epoch', ARGV[9], 'sessions', 0)
  redis.call('SADD', k('rooms'), room)
end
redis.call('ZADD', k('pool', room), 0, hid)
redis.call('HSET', k('host', hid), 'room', room, 'inst', inst)
redis.call('SADD', k('ihosts', inst), hid)
redis.call('INCR', k('count', 'hosts'))
return {'ok', tostring(redis.call('ZCARD', k('pool', room)))}
"""
)

#: ARGV: P, host id -> {sid, client, cinst, ...} of the sessions that ended
UNREGISTER = _PRELUDE + "return remove_host(ARGV[2])\n"

#: ARGV: P, room, epoch, max sessions, session id, client id, instance, pick in [0, 1)
JOIN = (
    _PRELUDE
    + """
local room, sid, cid, cinst = ARGV[2], ARGV[5], ARGV[6], ARGV[7]
local rk = k('room', room)
local r = redis.call('HMGET', rk, 'epoch', 'sessions')
if r[1] ~= ARGV[3] then return {'err', 'unauthorized'} end
if not alive(cinst) then return {'err', 'backend-unavailable'} end
if tonumber(r[2]) >= tonumber(ARGV[4]) then return {'err', 'room-full'} end
local pool = redis.call('ZRANGE', k('pool', room), 0, -1, 'WITHSCORES')
local best, ties, live = nil, {}, 0
for i = 1, #pool, 2 do
  local hid, n = pool[i], tonumber(pool[i + 1])
  local hinst = redis.call('HGET', k('host', hid), 'inst')
  if hinst and alive(hinst) then  -- hosts of a dead instance get no joins
    live = live + 1
    if best == nil or n < best then best, ties = n, {hid}
    elseif n == best then table.insert(ties, hid) end
  end
end
if best == nil then return {'err', 'unauthorized'} end
table.sort(ties)
local hid = ties[math.min(math.floor(tonumber(ARGV[8]) * #ties), #ties - 1) + 1]
local hinst = redis.call('HGET', k('host', hid), 'inst')
redis.call('ZINCRBY', k('pool', room), 1, hid)
local total = redis.call('HINCRBY', rk, 'sessions', 1)
redis.call('HSET', k('sess', sid), 'room', room, 'host', hid, 'hinst', hinst,
           'client', cid, 'cinst', cinst)
redis.call('SADD', k('hsess', hid), sid)
redis.call('SADD', k('iclients', cinst), sid)
redis.call('INCR', k('count', 'sessions'))
return {'ok', hid, hinst, tostring(live), tostring(best + 1), tostring(total)}
"""
)

#: ARGV: P, session, the asking side's field ('client' or 'host'), its id -> the other
#: side {id, instance}, or {} when the asker is not that side of a live session
END_SESSION = (
    _PRELUDE
    + """
local sid, side, who = ARGV[2], ARGV[3], ARGV[4]
if redis.call('HGET', k('sess', sid), side) ~= who then return {} end
local s = end_session(sid)
if side == 'client' then return {s[2], s[3]} end
return {s[4], s[5]}
"""
)

#: ARGV: P, dead instance -> {what, session, endpoint id, its instance, ...}: 'host-left'
#: for clients whose host was there, 'peer-left' for hosts whose client was there
REAP = (
    _PRELUDE
    + """
local inst = ARGV[2]
if alive(inst) then return {} end
if redis.call('SREM', k('instances'), inst) == 0 then return {} end  -- another reaper
local out = {}
for _, hid in ipairs(redis.call('SMEMBERS', k('ihosts', inst))) do
  local ended = remove_host(hid)
  for i = 1, #ended, 3 do
    table.insert(out, 'host-left'); table.insert(out, ended[i])
    table.insert(out, ended[i + 1]); table.insert(out, ended[i + 2])
  end
end
for _, sid in ipairs(redis.call('SMEMBERS', k('iclients', inst))) do
  local s = end_session(sid)
  if s then
    table.insert(out, 'peer-left'); table.insert(out, sid)
    table.insert(out, s[2]); table.insert(out, s[3])
  end
end
redis.call('DEL', k('ihosts', inst), k('iclients', inst), k('inbox', inst))
return out
"""
)
