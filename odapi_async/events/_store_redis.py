"""An event store in Redis, for several receiver processes behind one URL (extra ``redis``).

Dedupe keys are Redis keys with a TTL of the resend horizon. The queue is a Redis stream read through a
consumer group: any process may handle any event, an event taken by a process that died is claimed by another
after ``claim_after`` seconds, and an event is removed once its handlers ran. "Seen" and "queued" are written
together by one Lua script, so a batch is recorded whole or not at all, as in the SQLite store.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from odapi_async._util.optional import require_extra
from odapi_async.events._batch import Entry, decode_entry, encode_entry
from odapi_async.events._models import Event
from odapi_async.events._store import DEFAULT_HORIZON, StoreFull

if TYPE_CHECKING:
    from redis.asyncio import Redis

# KEYS[1] = stream; ARGV = ttl_ms, enqueue (0/1), max_queued, then (seen key, payload) pairs.
# Keys are checked first, so a full queue refuses the batch before anything is marked seen.
_PUT = """
local stream, ttl, enqueue, bound = KEYS[1], ARGV[1], ARGV[2] == '1', tonumber(ARGV[3])
local fresh = {}
for i = 4, #ARGV, 2 do
  if redis.call('EXISTS', ARGV[i]) == 0 and not fresh[ARGV[i]] then
    fresh[ARGV[i]] = ARGV[i + 1]
    table.insert(fresh, ARGV[i])
  end
end
if enqueue and #fresh > 0 and redis.call('XLEN', stream) + #fresh > bound then
  return -1
end
for _, key in ipairs(fresh) do
  redis.call('SET', key, '1', 'PX', ttl)
  if enqueue then redis.call('XADD', stream, '*', 'e', fresh[key]) end
end
return #fresh
"""


class RedisEventStore:
    """The dedupe index and the queue in Redis (see the module docstring). ``redis`` is a
    ``redis.asyncio.Redis`` client (the store does not close it) or a URL (the store owns that client)."""

    def __init__(
        self,
        redis: Redis | str,
        *,
        prefix: str = "odapi:events",
        horizon: float = DEFAULT_HORIZON,
        max_queued: int = 1_000_000,
        claim_after: float = 600.0,
        consumer: str | None = None,
    ) -> None:
        if horizon <= 0 or max_queued < 1 or claim_after <= 0:
            raise ValueError("horizon, max_queued and claim_after must be positive")
        if isinstance(redis, str):  # a client given is proof enough that redis is there
            require_extra("redis", "RedisEventStore")
        self._given = redis
        self._redis: Any = None
        self.prefix = prefix
        self.horizon = horizon
        self.max_queued = max_queued
        self.claim_after = claim_after
        self.consumer: str = consumer or f"{socket.gethostname()}-{os.getpid()}-{id(self):x}"
        self._stream = f"{prefix}:queue"
        self._failed = f"{prefix}:failed"
        self._group = "receivers"
        self._ids: dict[int, str] = {}  # local seq -> stream id, for events this process has taken
        self._next = 0
        self._backlog = True
        self._put_script: Any = None

    def __repr__(self) -> str:
        return f"<RedisEventStore prefix={self.prefix!r} taken={len(self._ids)}>"

    async def open(self) -> None:
        if self._redis is not None:
            return
        if isinstance(self._given, str):
            from redis.asyncio import Redis

            # every read and write has a bound: a Redis that stops answering fails the call (503), not hangs it
            self._redis = Redis.from_url(self._given, socket_timeout=10.0, socket_connect_timeout=5.0)
        else:
            self._redis = self._given
        try:
            await self._redis.xgroup_create(self._stream, self._group, id="0", mkstream=True)
        except Exception as exc:  # BUSYGROUP: another process made it first
            if "BUSYGROUP" not in str(exc):
                raise
        self._put_script = self._redis.register_script(_PUT)
        self._backlog = True

    async def close(self) -> None:
        client, self._redis = self._redis, None
        if client is not None and isinstance(self._given, str):
            await client.aclose()

    def outstanding(self) -> int:
        """Events this process holds, plus one while the shared stream may still have some for it."""
        return len(self._ids) + (1 if self._backlog else 0)

    async def put(self, entries: Sequence[Entry], *, enqueue: bool, now: float) -> int:
        if not entries:
            return 0
        args: list[Any] = [int(self.horizon * 1000), "1" if enqueue else "0", self.max_queued]
        for entry in entries:
            args += [f"{self.prefix}:seen:{entry.key.hex()}", encode_entry(entry) if enqueue else b""]
        fresh = int(await self._put_script(keys=[self._stream], args=args))
        if fresh < 0:
            raise StoreFull(f"the shared event queue holds {self.max_queued} events")
        if fresh and enqueue:
            self._backlog = True
        return fresh

    async def take(self, limit: int) -> list[Event[Any]]:
        r = self._redis
        if r is None:
            raise RuntimeError("the event store is not open")
        _, claimed, *_ = await r.xautoclaim(
            self._stream, self._group, self.consumer, int(self.claim_after * 1000), "0-0", count=limit
        )
        found = list(claimed)
        if len(found) < limit:
            answer = await r.xreadgroup(
                self._group, self.consumer, {self._stream: ">"}, count=limit - len(found)
            )
            for _, messages in answer or ():
                found += messages
        self._backlog = len(found) >= limit
        out = []
        for stream_id, fields in found:
            if fields is None:  # deleted meanwhile (another process finished it)
                continue
            self._next += 1
            sid = stream_id.decode() if isinstance(stream_id, bytes) else str(stream_id)
            self._ids[self._next] = sid
            out.append(decode_entry(self._next, fields[b"e"] if b"e" in fields else fields["e"]))
        return out

    async def done(self, seqs: Sequence[int]) -> None:
        ids = [self._ids[s] for s in seqs if s in self._ids]
        try:
            if ids:
                pipe = self._redis.pipeline(transaction=True)
                pipe.xack(self._stream, self._group, *ids)
                pipe.xdel(self._stream, *ids)
                await pipe.execute()
        finally:
            self._let_go(seqs)

    async def failed(self, seqs: Sequence[int]) -> None:
        ids = [self._ids[s] for s in seqs if s in self._ids]
        try:
            if ids:
                await self._move_to_failed(ids)
        finally:
            self._let_go(seqs)

    def _let_go(self, seqs: Sequence[int]) -> None:
        # Only once Redis has the outcome: until then the events count as outstanding, so that join() does not
        # return before a failed event is in the failed list.
        for seq in seqs:
            self._ids.pop(seq, None)

    async def _move_to_failed(self, ids: list[str]) -> None:
        ordered = sorted(ids, key=lambda sid: tuple(int(part) for part in sid.split("-")))
        # Each by its own id, one entry at most: a range from the first to the last would carry every event
        # queued between them (an old event failing beside a new one: the whole backlog, in one answer).
        reads = self._redis.pipeline(transaction=False)
        for sid in ordered:
            reads.xrange(self._stream, sid, sid, count=1)
        found = await reads.execute()
        pipe = self._redis.pipeline(transaction=True)
        for entries in found:
            for _, fields in entries:  # none when another process finished it meanwhile
                pipe.rpush(self._failed, fields[b"e"])
        pipe.ltrim(self._failed, -10_000, -1)  # kept for inspection, bounded
        pipe.xack(self._stream, self._group, *ids)
        pipe.xdel(self._stream, *ids)
        await pipe.execute()

    async def failed_events(self, limit: int = 100) -> list[Event[Any]]:
        """Events whose handlers gave up (oldest first; the last 10 000 are kept)."""
        blobs = await self._redis.lrange(self._failed, 0, limit - 1)
        return [decode_entry(0, blob) for blob in blobs]
