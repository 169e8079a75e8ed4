"""Where a receiver keeps what it has seen and what it still has to hand to handlers.

One store does both jobs — the dedupe index and the queue — so that "this row is new" and "this row is
queued" are recorded together: a call is answered 200 only once both are, and never one without the other.

- :class:`MemoryEventStore` (the default): bounded in keys and queued events; lives as long as the process.
- :class:`~odapi_async.events.SQLiteEventStore`: a file, so a restarted receiver loses nothing it answered
  200 for and still recognises rows it handled before.
- :class:`~odapi_async.events.RedisEventStore`: one dedupe index shared by several receiver processes.
"""

from __future__ import annotations

import dataclasses
import logging
from collections import OrderedDict, deque
from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

from odapi_async.events._batch import Entry
from odapi_async.events._models import Event

logger = logging.getLogger("odapi_async.events")

#: Open Dental resends "all changed rows … from up to the last three days" after an outage; keys live a
#: little longer than that so that a resend at the very end of the window is still recognised.
DEFAULT_HORIZON = 3.5 * 24 * 3600.0


class StoreFull(RuntimeError):
    """The queue is at its bound: the call is refused (503) and Open Dental sends it again later."""


@runtime_checkable
class EventStore(Protocol):
    """The dedupe index plus the durable queue (see the module docstring)."""

    async def open(self) -> None:
        """Make the store ready (create tables, count what is still queued)."""

    async def close(self) -> None:
        """Release the store's resources."""

    async def put(self, entries: Sequence[Entry], *, enqueue: bool, now: float) -> int:
        """Record the keys of ``entries``; queue the ones never seen (when ``enqueue``). Return how many were
        new. All or nothing; raise :class:`StoreFull` when the queue has no room for them."""

    async def take(self, limit: int) -> list[Event[Any]]:
        """Up to ``limit`` queued events not yet taken, oldest first, each with its ``seq``."""

    async def done(self, seqs: Sequence[int]) -> None:
        """Forget events whose handlers have run."""

    async def failed(self, seqs: Sequence[int]) -> None:
        """Events whose handlers gave up: kept for inspection where the store can, else forgotten."""

    def outstanding(self) -> int:
        """Events queued or taken and not yet done."""


class MemoryEventStore:
    """The in-process store: a bounded dict of keys (oldest evicted first) and a bounded queue.

    Nothing survives the process: use :class:`SQLiteEventStore` when a restart must lose nothing.
    """

    def __init__(
        self, *, horizon: float = DEFAULT_HORIZON, max_keys: int = 200_000, max_queued: int = 100_000
    ) -> None:
        if horizon <= 0 or max_keys < 1 or max_queued < 1:
            raise ValueError("horizon, max_keys and max_queued must be positive")
        self.horizon = horizon
        self.max_keys = max_keys
        self.max_queued = max_queued
        self._seen: OrderedDict[bytes, float] = OrderedDict()  # key -> expiry, in insertion order
        self._queue: deque[Event[Any]] = deque()
        self._taken: set[int] = set()
        self._seq = 0
        self._evicting_logged = False
        self.failed_count: int = 0

    def __repr__(self) -> str:
        return f"<MemoryEventStore keys={len(self._seen)} queued={self.outstanding()}>"

    async def open(self) -> None:
        return None

    async def close(self) -> None:
        return None

    def outstanding(self) -> int:
        return len(self._queue) + len(self._taken)

    async def put(self, entries: Sequence[Entry], *, enqueue: bool, now: float) -> int:
        self._expire(now)
        fresh: list[Entry] = []
        batch_keys: set[bytes] = set()
        for entry in entries:
            if entry.key not in self._seen and entry.key not in batch_keys:
                batch_keys.add(entry.key)
                fresh.append(entry)
        if enqueue and self.outstanding() + len(fresh) > self.max_queued:
            raise StoreFull(f"{self.outstanding()} events are queued (bound {self.max_queued})")
        expiry = now + self.horizon
        for entry in fresh:
            self._seen[entry.key] = expiry
            if enqueue:
                self._seq += 1
                self._queue.append(dataclasses.replace(entry.event, seq=self._seq))
        self._bound_keys()
        return len(fresh)

    async def take(self, limit: int) -> list[Event[Any]]:
        out: list[Event[Any]] = []
        while self._queue and len(out) < limit:
            event = self._queue.popleft()
            self._taken.add(event.seq)
            out.append(event)
        return out

    async def done(self, seqs: Sequence[int]) -> None:
        self._taken.difference_update(seqs)

    async def failed(self, seqs: Sequence[int]) -> None:
        self.failed_count += len(seqs)
        self._taken.difference_update(seqs)

    def _expire(self, now: float) -> None:
        seen = self._seen
        while seen:
            key, expiry = next(iter(seen.items()))
            if expiry > now:
                break
            del seen[key]

    def _bound_keys(self) -> None:
        over = len(self._seen) - self.max_keys
        if over <= 0:
            return
        if not self._evicting_logged:
            self._evicting_logged = True
            logger.warning(
                "event dedupe store is full (%d keys): forgetting the oldest before the resend horizon; "
                "raise max_keys or use SQLiteEventStore",
                self.max_keys,
            )
        for _ in range(over):
            self._seen.popitem(last=False)
