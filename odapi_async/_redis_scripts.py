"""The Redis side of the shared throttle: one Lua script per decision, run atomically on Redis's clock.

Per (mode, customer key) two keys share the hash tag ``{key_id}`` (one Cluster slot), under a namespace:

* ``NS:throttle:{key_id}:MODE`` — a hash: ``start`` (the latest granted start, ms of Redis time), ``rtt`` (that
  request's round trip, once it completed cleanly), ``hold`` (no start before this: throttle answers, requests
  given up while they may still run), ``learned`` (tier "auto" was refused: read_all from now on), ``slow`` (a
  decaying slowest round trip: how long a holder may run);
* ``NS:throttle:{key_id}:MODE:leases`` — a sorted set of leases, ``LEASE_ID|START`` scored by expiry. Every
  lease expires (a killed worker's turn frees itself after the TTL); a holder renews it past half the TTL;
* ``...:line`` and ``...:tickets`` — the callers waiting for a lease, in order of arrival, and when each one's
  place expires (a waiter that died leaves the line a grace period after it should have asked again).

``ACQUIRE`` drops expired leases and tickets, computes the earliest allowed start (``start + interval + margin``,
the hold, now) and, when a lease is free and nobody waits ahead, *reserves* that start: the lease is taken now
and the caller sleeps the returned wait, then sends. Otherwise the caller joins the line, and the answer is when
its turn should come: after the oldest holder's expected end (when every lease is taken), one interval per
waiter ahead. So waiting processes wake one at a time, in order, instead of all at once. ``RELEASE`` drops the lease, moves
``start`` to the real departure, records the round trip, and applies a throttle report or a give-up hold.

Times are milliseconds as decimal strings: Lua formats numbers with 14 significant digits, too few for
microseconds since 1970, and Redis truncates a number reply to an integer.
"""

from __future__ import annotations

import hashlib

__all__ = ["ACQUIRE", "LEAVE", "RELEASE", "RENEW", "Script", "state_keys"]


def state_keys(namespace: str, mode: str, key_id: str) -> tuple[str, str, str, str]:
    """The hash, the leases, the line and the tickets of one key (the opaque key id, never the customer key)."""
    base = f"{namespace}:throttle:{{{key_id}}}:{mode}"
    return base, base + ":leases", base + ":line", base + ":tickets"


class Script:
    """A Lua script and its SHA1 (what ``EVALSHA`` names)."""

    __slots__ = ("body", "name", "sha")

    def __init__(self, name: str, body: str) -> None:
        self.name = name
        self.body = body
        self.sha = hashlib.sha1(body.encode()).hexdigest()

    def __repr__(self) -> str:
        return f"<Script {self.name} {self.sha[:8]}>"


_NOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local function f(x) return string.format('%.3f', x) end
"""

# ARGV: lease id, cap, ttl, interval (tier as set), interval (learned read_all), margin when the last round trip
# is unknown, estimated minimum round trip (-1: not used), cap of the extra, floor, keep (state expiry, ms),
# ticket grace (ms).
# Returns {granted (1/0), wait ms, learned (1/0), lease member or ''}.
ACQUIRE = Script(
    "acquire",
    _NOW
    + """
local id, cap, ttl = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', f(now))
local dead = redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', f(now))
if #dead > 0 then
  redis.call('ZREM', KEYS[3], unpack(dead))
  redis.call('ZREM', KEYS[4], unpack(dead))
end
local s = redis.call('HMGET', KEYS[1], 'start', 'hold', 'learned', 'rtt', 'slow')
local learned = s[3] == '1'
local interval = tonumber(learned and ARGV[5] or ARGV[4])
local earliest = math.max(now, tonumber(s[2]) or 0)
local step = 0
if interval > 0 then
  local margin = tonumber(ARGV[6])
  local est_min = tonumber(ARGV[7])
  if s[4] and est_min >= 0 then
    margin = math.min(math.max(tonumber(s[4]) - est_min, 0), tonumber(ARGV[8])) + tonumber(ARGV[9])
  end
  step = interval  -- no margin: a waiter woken early is told the exact rest, one woken late loses time
  if s[1] then earliest = math.max(earliest, tonumber(s[1]) + interval + margin) end
end
local flag = learned and 1 or 0
local busy = redis.call('ZCARD', KEYS[2])
local rank = redis.call('ZRANK', KEYS[3], id)
local ahead = rank or redis.call('ZCARD', KEYS[3])
if busy + ahead < cap then
  local at = f(earliest)
  local member = id .. '|' .. at
  redis.call('ZADD', KEYS[2], f(earliest + ttl), member)
  if rank then
    redis.call('ZREM', KEYS[3], id)
    redis.call('ZREM', KEYS[4], id)
  end
  if interval > 0 then
    redis.call('HSET', KEYS[1], 'start', at)
    redis.call('HDEL', KEYS[1], 'rtt')
  end
  for i = 1, 2 do redis.call('PEXPIRE', KEYS[i], ARGV[10]) end
  return {1, f(earliest - now), flag, member}
end
-- Wait in line: after the holders' expected end (when every lease is taken), one step per waiter ahead.
local base = earliest
if busy >= cap then
  local oldest = redis.call('ZRANGE', KEYS[2], 0, 0)[1]
  local started = tonumber(string.match(oldest, '|([%d%.]+)$')) or now
  local due = started + math.max(interval, tonumber(s[5]) or 0)
  if due <= now then
    -- The holder runs longer than expected: ask again after a quarter of its running time (5..250 ms).
    due = now + math.min(math.max((now - started) / 4, 5), 250)
  end
  base = math.max(base, due)
end
local wait = base + ahead * step - now
if not rank then redis.call('ZADD', KEYS[3], f(now), id) end
redis.call('ZADD', KEYS[4], f(now + wait + tonumber(ARGV[11])), id)
for i = 3, 4 do redis.call('PEXPIRE', KEYS[i], ARGV[10]) end
return {0, f(wait), flag, ''}
""",
)

# ARGV: member, departure after the reserved start (ms, -1: unknown), ok (1, 0, 2: never sent), round trip ms (-1), throttled
# (1/0), Retry-After ms (-1: none), max wait ms, running estimate of a given-up request ms, remote (1/0),
# auto (1/0), interval (as set), interval (learned), full-tier interval, keep ms.
# Returns {learned now (1/0), learned (1/0)}.
RELEASE = Script(
    "release",
    _NOW
    + """
local member = ARGV[1]
local mstart = string.match(member, '|([%d%.]+)$')
redis.call('ZREM', KEYS[2], member)
local s = redis.call('HMGET', KEYS[1], 'start', 'hold', 'learned', 'slow')
local latest = s[1] == mstart
local learned = s[3] == '1'
local interval = tonumber(learned and ARGV[12] or ARGV[11])
if ARGV[3] == '2' then return {0, learned and 1 or 0} end  -- never sent: the reserved start stays taken
local hold = tonumber(s[2]) or 0
local sent = tonumber(mstart)
if tonumber(ARGV[2]) >= 0 then sent = sent + tonumber(ARGV[2]) end
if interval > 0 then
  if ARGV[3] == '1' then
    local rtt = tonumber(ARGV[4])
    if latest then
      redis.call('HSET', KEYS[1], 'start', f(sent), 'rtt', f(rtt))
    end
    redis.call('HSET', KEYS[1], 'slow', f(math.max(rtt, (tonumber(s[4]) or 0) * 0.9)))
  else
    -- Given up after it may have left: it may still run on the server (same rule as in-process).
    if latest then redis.call('HSET', KEYS[1], 'start', f(math.max(sent, now))) end
    hold = math.max(hold, sent + tonumber(ARGV[8]))
  end
end
local learned_now = 0
if ARGV[5] == '1' then
  local h
  local ra = math.max(tonumber(ARGV[6]), 0)
  if ARGV[9] ~= '1' then
    h = math.max(ra, tonumber(ARGV[13]))
  else
    if ARGV[10] == '1' and not learned then
      learned = true
      learned_now = 1
      interval = tonumber(ARGV[12])
      redis.call('HSET', KEYS[1], 'learned', '1')
    end
    h = math.max(ra, interval)
  end
  hold = math.max(hold, now + math.min(h, tonumber(ARGV[7])))
end
if hold > 0 then redis.call('HSET', KEYS[1], 'hold', f(hold)) end
redis.call('PEXPIRE', KEYS[1], ARGV[14])
return {learned_now, learned and 1 or 0}
""",
)

# ARGV: lease id. A waiter that gives up leaves the line (else the others wait for its ticket to expire).
LEAVE = Script(
    "leave",
    """
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('ZREM', KEYS[4], ARGV[1])
return 1
""",
)

# ARGV: member, ttl. Returns 1 when the lease was still held (and now expires ttl from now), else 0.
RENEW = Script(
    "renew",
    _NOW
    + """
if redis.call('ZSCORE', KEYS[2], ARGV[1]) then
  redis.call('ZADD', KEYS[2], 'XX', f(now + tonumber(ARGV[2])), ARGV[1])
  return 1
end
return 0
""",
)
