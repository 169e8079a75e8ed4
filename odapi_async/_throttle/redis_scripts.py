"""The Redis side of the shared throttle: one Lua script per decision, run atomically on Redis's clock.

Per (mode, customer key) these keys share the hash tag ``{key_id}`` (one Cluster slot), under a namespace
(``BASE`` = ``NS:throttle:{key_id}:MODE``):

* ``BASE`` — a hash: ``start`` (the latest granted start, ms of Redis time), ``rtt`` (that request's round
  trip, once it completed cleanly), ``hold`` (no start before this: throttle answers, requests given up while
  they may still run), ``learned`` (tier "auto" was refused: read_all from now on);
* ``BASE:leases`` — a sorted set of leases, ``LEASE_ID|START`` scored by expiry. Every lease expires (a killed
  worker's turn frees itself after the TTL); a holder renews it past half the TTL;
* ``BASE:line`` and ``BASE:line:interactive`` — the callers waiting for a lease, one lane per priority, in
  order of arrival (a refused request sent again goes to the front of its lane); ``BASE:tickets`` and
  ``BASE:terms`` — when each one's place expires, and each one's spacing terms (intervals, margin parts, TTL,
  cap). The next turn goes to the interactive lane's head, but a waiting bulk head lets at most
  ``MAX_OVERTAKES`` interactive turns pass (the in-process lanes' rule, ``_throttle/lanes.py``);
* ``BASE:rtts`` — the latest 32 round trips of the key, from every process: the margin's window, shared, so a
  worker that starts late does not pay the cautious first margin again;
* ``BASE:grant:LEASE_ID`` — one list per waiting caller: the decision for it is pushed there, and the caller
  waits on it with ``BLPOP`` (sent in the same round trip as its ``ACQUIRE``);
* ``BASE:handed`` — a hash of the leases handed to waiters and not yet known to be read: ``LEASE_ID`` →
  member. ``PICKUP`` checks them (see below).

So a turn is decided when a lease frees, not when a waiter asks again: ``ACQUIRE`` puts the caller in line and
hands free leases to the heads of the line; ``RELEASE`` (and ``LEAVE``, and an expired lease noticed by any
script) hands the freed lease to the next in line. Handing a lease over *reserves* a start, the earliest the
spacing allows (previous start + interval + margin, a throttle hold, now), and pushes ``G member wait learned``
to that caller's list: it sleeps ``wait`` and sends. Two round trips per request: acquire (with the ``BLPOP``),
release. A caller that gives up calls ``LEAVE``, which takes back a grant not yet read and pushes ``C`` so
that its ``BLPOP`` returns.

A waiter that died in line (its process killed) cannot read a lease handed to it, and would hold the key
until the lease's TTL. Redis serves a client blocked on a list right after the command that pushed to it, so
``PICKUP``, sent in the same round trip just after ``RELEASE`` or ``LEAVE``, finds every live grantee's
decision already read: a decision still unread belongs to a caller that is gone. ``PICKUP`` takes that lease
back (its reserved start stays taken, as with ``LEAVE``) and hands it on, so the key waits about one interval,
not a TTL. (A live caller caught between its ``BLPOP`` calls finds ``R`` in its list instead, and joins the line
again.)

Times are milliseconds as decimal strings: Lua formats numbers with 14 significant digits, too few for
microseconds since 1970, and Redis truncates a number reply to an integer.
"""

from __future__ import annotations

from odapi_async._throttle.lanes import MAX_OVERTAKES
from odapi_async._throttle.margin import MIN_SAMPLES, WINDOW
from odapi_async._util.redis_client import Script

__all__ = ["ACQUIRE", "LEAVE", "PICKUP", "RELEASE", "RENEW", "grant_key", "state_keys"]

#: How long a decision pushed to a caller's list waits to be read (ms): far longer than a BLPOP reply takes.
GRANT_KEEP_MS = 60_000


def state_keys(namespace: str, mode: str, key_id: str) -> tuple[str, ...]:
    """The hash, leases, bulk line, tickets, terms, round trips, interactive line and handed leases of one
    key (the opaque key id, never the customer key)."""
    base = f"{namespace}:throttle:{{{key_id}}}:{mode}"
    parts = ("leases", "line", "tickets", "terms", "rtts", "line:interactive", "handed")
    return (base, *(f"{base}:{part}" for part in parts))


def grant_key(base: str, lease_id: str) -> str:
    """The list a waiting caller blocks on (the same hash tag as ``base``: the same Cluster slot)."""
    return f"{base}:grant:{lease_id}"


_NOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local function f(x) return string.format('%.3f', x) end
"""

# The hand-over, shared by every script that may free a lease. A caller's terms (one string, ms):
# 1 interval (tier as set), 2 interval (learned read_all), 3 margin while fewer than MIN_SAMPLES round trips
# are known, 4 cap of the margin's extra, 5 floor, 6 fixed margin (-1: measured), 7 lease TTL, 8 max in flight.
# The margin is ``margin.MarginEstimator.margin``'s rule, on the shared window of round trips.
_HANDOVER = (
    _NOW
    + f"""
local GRANT_KEEP = {GRANT_KEEP_MS}
local MAX_OVERTAKES = {MAX_OVERTAKES}
local MIN_SAMPLES = {MIN_SAMPLES}
local WINDOW = {WINDOW}
local function split(s)
  local r = {{}}
  for w in string.gmatch(s, '%S+') do r[#r + 1] = tonumber(w) end
  return r
end
local function state() return redis.call('HMGET', KEYS[1], 'start', 'hold', 'learned', 'rtt') end
local function forget(id)
  redis.call('ZREM', KEYS[3], id)
  redis.call('ZREM', KEYS[7], id)
  redis.call('ZREM', KEYS[4], id)
  redis.call('HDEL', KEYS[5], id)
end
local function sweep()
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', f(now))
  for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', f(now))) do forget(id) end
end
local function margin(tm, last)
  if tm[6] >= 0 then return tm[6] end
  local rtts = redis.call('LRANGE', KEYS[6], 0, -1)
  local n = #rtts
  if n < MIN_SAMPLES then return math.max(tm[3], tm[5]) end
  local low, high = math.huge, -math.huge
  for _, r in ipairs(rtts) do
    r = tonumber(r)
    low, high = math.min(low, r), math.max(high, r)
  end
  local span = high - low
  local extra = span  -- the last round trip unknown (still running, or failed): the worst span seen
  if last then extra = tonumber(last) - (low - span / math.sqrt(n)) end
  return math.min(math.max(extra, 0), tm[4]) + tm[5]
end
local function grant(id, tm, s)
  local learned = s[3] == '1'
  local interval = learned and tm[2] or tm[1]
  local at = math.max(now, tonumber(s[2]) or 0)
  if interval > 0 and s[1] then at = math.max(at, tonumber(s[1]) + interval + margin(tm, s[4])) end
  local member = id .. '|' .. f(at)
  redis.call('ZADD', KEYS[2], f(at + tm[7]), member)
  if interval > 0 then
    redis.call('HSET', KEYS[1], 'start', f(at))
    redis.call('HDEL', KEYS[1], 'rtt')
    s[1], s[4] = f(at), false
  end
  local gk = KEYS[1] .. ':grant:' .. id
  redis.call('RPUSH', gk, 'G ' .. member .. ' ' .. f(at - now) .. ' ' .. (learned and 1 or 0))
  redis.call('PEXPIRE', gk, GRANT_KEEP)
  redis.call('HSET', KEYS[8], id, member)
end
-- The caller whose turn is next: the interactive head, unless a bulk head has let MAX_OVERTAKES pass.
local function next_in_line()
  local bulk = redis.call('ZRANGE', KEYS[3], 0, 0)[1]
  local inter = redis.call('ZRANGE', KEYS[7], 0, 0)[1]
  if bulk and (not inter or (tonumber(redis.call('HGET', KEYS[1], 'overtakes')) or 0) >= MAX_OVERTAKES) then
    return bulk, true
  end
  return inter, false
end
-- Free leases go to the heads of the lanes, in turn.
local function handover(keep)
  local s = state()
  local busy = redis.call('ZCARD', KEYS[2])
  while true do
    local head, is_bulk = next_in_line()
    if not head then break end
    local terms = redis.call('HGET', KEYS[5], head)
    if not terms then
      forget(head)
    else
      local tm = split(terms)
      if busy >= tm[8] then break end
      forget(head)
      if is_bulk or redis.call('ZCARD', KEYS[3]) == 0 then
        redis.call('HDEL', KEYS[1], 'overtakes')
      else
        redis.call('HINCRBY', KEYS[1], 'overtakes', 1)
      end
      grant(head, tm, s)
      busy = busy + 1
    end
  end
  for i = 1, #KEYS do redis.call('PEXPIRE', KEYS[i], keep) end
end
"""
)

# ARGV: lease id, terms, keep (state expiry, ms), ticket (how long the caller's place lasts, ms), lane ('i':
# interactive, 'b': bulk), front ('1': a refused request sent again goes to the front of its lane).
# Returns {1} when a lease was handed to the caller now, {0, ms until the oldest lease expires (-1: none)} when
# it waits in line, {2} when its turn was decided before (a hand-over or LEAVE): either way the decision is
# (or will be) in its list.
ACQUIRE = Script(
    "acquire",
    _HANDOVER
    + """
local id = ARGV[1]
local gk = KEYS[1] .. ':grant:' .. id
if redis.call('EXISTS', gk) == 1 then return {2} end
sweep()
local lane = ARGV[5] == 'i' and KEYS[7] or KEYS[3]
redis.call('ZADD', lane, 'NX', f(ARGV[6] == '1' and -now or now), id)
redis.call('ZADD', KEYS[4], f(now + tonumber(ARGV[4])), id)
redis.call('HSET', KEYS[5], id, ARGV[2])
handover(ARGV[3])
if redis.call('EXISTS', gk) == 1 then return {1} end
local oldest = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
return {0, oldest[2] and f(tonumber(oldest[2]) - now) or '-1'}
""",
)

# ARGV: member, departure after the reserved start (ms, -1: unknown), ok (1, 0, 2: never sent), round trip ms (-1),
# throttled (1/0), Retry-After ms (-1: none), max wait ms, running estimate of a given-up request ms, remote
# (1/0), auto (1/0), interval (as set), interval (learned), full-tier interval, keep ms.
# Returns {learned now (1/0), learned (1/0)}.
RELEASE = Script(
    "release",
    _HANDOVER
    + """
local member = ARGV[1]
local mstart = string.match(member, '|([%d%.]+)$')
redis.call('ZREM', KEYS[2], member)
local s = state()
local latest = s[1] == mstart
local learned = s[3] == '1'
local interval = tonumber(learned and ARGV[12] or ARGV[11])
local learned_now = 0
if ARGV[3] ~= '2' then  -- never sent: the reserved start stays taken, nothing else changes
  local hold = tonumber(s[2]) or 0
  local sent = tonumber(mstart)
  if tonumber(ARGV[2]) >= 0 then sent = sent + tonumber(ARGV[2]) end
  if interval > 0 then
    if ARGV[3] == '1' then
      if latest then
        redis.call('HSET', KEYS[1], 'start', f(sent))
        if tonumber(ARGV[4]) >= 0 then redis.call('HSET', KEYS[1], 'rtt', ARGV[4]) end
      end
      if tonumber(ARGV[4]) >= 0 then
        redis.call('LPUSH', KEYS[6], ARGV[4])
        redis.call('LTRIM', KEYS[6], 0, WINDOW - 1)
      end
    else
      -- Given up after it may have left: it may still run on the server (same rule as in-process).
      if latest then redis.call('HSET', KEYS[1], 'start', f(math.max(sent, now))) end
      hold = math.max(hold, sent + tonumber(ARGV[8]))
    end
  end
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
end
sweep()
handover(ARGV[14])
return {learned_now, learned and 1 or 0}
""",
)

# ARGV: lease id, keep ms. A caller that gives up: out of the line; a lease handed to it and not yet read is
# taken back (its reserved start stays taken) and handed on; ``C`` in its list ends its BLPOP.
# Returns 1 when it took back a lease, else 0.
LEAVE = Script(
    "leave",
    _HANDOVER
    + """
local id = ARGV[1]
local gk = KEYS[1] .. ':grant:' .. id
local took = 0
local g = redis.call('LPOP', gk)
forget(id)
if g and string.sub(g, 1, 1) == 'G' then
  redis.call('ZREM', KEYS[2], string.match(g, '^G (%S+)'))
  took = 1
end
sweep()
handover(ARGV[2])
redis.call('DEL', gk)
redis.call('RPUSH', gk, 'C')
redis.call('PEXPIRE', gk, GRANT_KEEP)
return took
""",
)

# ARGV: keep ms. After RELEASE or LEAVE, in the same round trip (module docstring): a lease handed to a caller
# that has not read it is taken back and handed on. Returns the number taken back.
PICKUP = Script(
    "pickup",
    _HANDOVER
    + """
local handed = redis.call('HGETALL', KEYS[8])
redis.call('DEL', KEYS[8])
local gone = 0
for i = 1, #handed, 2 do
  local gk = KEYS[1] .. ':grant:' .. handed[i]
  local g = redis.call('LINDEX', gk, 0)
  if g and string.sub(g, 1, 1) == 'G' then
    redis.call('ZREM', KEYS[2], handed[i + 1])
    redis.call('DEL', gk)
    redis.call('RPUSH', gk, 'R')  -- a caller late for its BLPOP, not gone: ask again
    redis.call('PEXPIRE', gk, GRANT_KEEP)
    gone = gone + 1
  end
end
if gone > 0 then
  sweep()
  handover(ARGV[1])
end
return gone
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
