"""The concurrency-aware per-customer-key throttle.

Open Dental's Remote mode allows one request per interval *T* per customer key (5 s ``read_all``, 1 s
``full``, 0.5 s ``enterprise``), and the interval includes the request's own execution. So, per key:

* a request may start no sooner than ``T + margin`` after the previous one *started*;
* at most ``max_in_flight`` (default 1) run at once, so a slow request is never overlapped by the next;
* Local and Service modes have no interval, only an in-flight cap (default 8) that protects the office server.

Scheduling. Each key keeps two FIFO lanes of waiters (``interactive`` before ``bulk``), each waiter a bare
future. Nothing polls and no waiter sleeps: when the head of the queue is blocked only by time, the key arms
exactly one loop timer (``call_at``) for the moment it may start; a released slot schedules one dispatch. An
idle key holds no timer, so 500 keys cost at most 500 pending timer handles, each firing once per granted
request, and keys share no lock. A waiter cancelled before its turn is removed in O(1) (lanes are
``OrderedDict``); one cancelled in the instant between being granted and resuming gives its grant back (the
start time is restored).

Safety margin. The server measures *arrivals*; the client controls *departures*. Request A leaves at
``s_A`` and arrives at ``s_A + u_A``; B arrives at ``s_B + u_B``; spacing ``>= T`` needs
``s_B - s_A >= T + (u_A - u_B)``. A fixed margin must cover the whole one-way jitter span J on every
request, which caps the rate at ``1 / (T + J)``. We measure instead. A's round trip (departure to the end of
the slot) is ``u_A + rest_A``; its excess over the smallest round trip seen lately bounds how much later A
arrived than the fastest possible arrival, which is the earliest B can arrive. So once A has completed, B
may leave at ``s_A + T + (rtt_A - est_min) + floor``: ``est_min`` is the minimum of the last 32 round trips
lowered by ``span / (n - 1)`` (the lower-end estimate for a uniform spread: B may beat every sample seen),
and ``floor`` (2 ms) absorbs timer and loop granularity. A fast request costs almost no margin; on average
the cost is the mean excess (J/2 with jitter on the way up only, about J with jitter both ways). Until four
round trips are known, or while the previous request has not completed (``max_in_flight > 1``, or it
failed), the margin is the full spread seen (50 ms at first). The extra is capped at
``min(100 ms, max(50 ms, T / 2))``: a slow *execution* looks like jitter to the client, and must not stall
the key. A throttle answer on a key whose tier is already known widens the floor by 10 ms.
``safety_margin=<seconds>`` replaces all this with a fixed margin. Measured against the emulator (P1 in
``benchmarks/bench_throttle.py``, 21..39 ms each way, T = 0.2 s): 0 violations at 0.98 of ``1 / (T + J)``.

Departure. The slot's start is when the waiting task resumes; a busy client (hundreds of keys) may write the
request much later. ``slot.mark_sent()``, or httpx's ``trace`` extension set to ``slot.trace``, records the
real departure: the spacing and the round trip then count from it. Without it, a client whose event loop
lags by more than the margin cap can bring two arrivals too close.

Why not aiolimiter. ``AsyncLimiter(1, T)`` is a leaky bucket: it counts *acquisitions*, not starts or
in-flight requests, so a request that runs longer than T is overlapped by the next one (the server refuses
it), it has no priority lanes, no per-key registry, no margin, and its bucket semantics admit a burst of
``max_rate`` at first use. The scheduler needed here is a next-allowed-start time plus an in-flight count,
which is smaller than adapting a bucket to it.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from types import TracebackType
from typing import Any, Literal, get_args

__all__ = [
    "TIER_INTERVALS",
    "KeyThrottle",
    "Mode",
    "Priority",
    "ThrottleRegistry",
    "ThrottleSlot",
    "ThrottleStats",
    "Tier",
]

logger = logging.getLogger("odapi_async.throttle")

Mode = Literal["local", "service", "remote"]
Tier = Literal["read_all", "full", "enterprise", "auto"]
Priority = Literal["interactive", "bulk"]

TIER_INTERVALS: dict[str, float] = {"read_all": 5.0, "full": 1.0, "enterprise": 0.5}
DEFAULT_IN_FLIGHT: dict[str, int] = {"remote": 1, "local": 8, "service": 8}

_MODES: frozenset[str] = frozenset(get_args(Mode))
_TIERS: frozenset[str] = frozenset(get_args(Tier))
_PRIORITIES: frozenset[str] = frozenset(get_args(Priority))

_WINDOW = 32  # round trips remembered per key
_MIN_SAMPLES = 4  # below this the per-request estimate is not trusted
_INITIAL_MARGIN = 0.05  # before any round trip is known
_MAX_EXTRA = 0.1  # the largest one-way jitter defended adaptively (a slow execution looks like jitter)
_FLOOR = 0.002  # loop and timer granularity
_FLOOR_STEP = 0.01  # widening after a throttle answer the margin should have prevented
_INF = float("inf")


@dataclass
class ThrottleStats:
    """Counters of one key in one mode (a snapshot copy)."""

    requests: int = 0
    """Slots granted (each HTTP attempt, retries included)."""
    waits: int = 0
    """Grants that had to queue first."""
    wait_time: float = 0.0
    """Seconds spent queued, summed over all waits."""
    throttle_answers: int = 0
    """Throttle answers (429 or throttle-text 400/503) reported by the session."""
    in_flight: int = 0
    queued: int = 0
    interval: float = 0.0
    tier: str = "auto"
    margin: float = 0.0
    """The safety margin the next start would use (0 for local/service)."""
    max_start_lag: float = 0.0
    """Worst delay between the moment a queued request was allowed to start and its start."""


class _Waiter:
    __slots__ = ("eligible", "enqueued", "future", "lane", "prev_last_rtt", "prev_last_start", "seq")

    def __init__(self, seq: int, lane: OrderedDict[int, _Waiter], future: asyncio.Future[None], now: float):
        self.seq = seq
        self.lane = lane
        self.future = future
        self.enqueued = now
        self.eligible = now
        self.prev_last_start = -_INF
        self.prev_last_rtt: float | None = None


class ThrottleSlot:
    """What :meth:`KeyThrottle.slot` returns: ``async with throttle.slot() as slot: ...``.

    Optionally tell it when the request actually left, either with ``slot.mark_sent()`` or by passing
    ``extensions={"trace": slot.trace}`` to httpx: spacing then counts from the departure, so time lost in a
    busy client between taking the slot and writing the request cannot bring two arrivals too close.
    """

    __slots__ = ("_priority", "_retry", "_sent", "_seq", "_started", "_throttle")

    def __init__(self, throttle: KeyThrottle, priority: Priority, retry: bool):
        self._throttle = throttle
        self._priority = priority
        self._retry = retry
        self._seq = -1
        self._started = 0.0
        self._sent: float | None = None

    async def __aenter__(self) -> ThrottleSlot:
        self._seq, self._started = await self._throttle._acquire(self._priority, self._retry)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        sent = self._sent if self._sent is not None else self._started
        self._throttle._release(self._seq, sent, ok=exc_type is None)

    def mark_sent(self) -> None:
        """The request has been written to the network (the first call counts)."""
        if self._seq >= 0 and self._sent is None:
            self._sent = self._throttle._departed(self._seq)

    async def trace(self, event: str, info: Mapping[str, Any]) -> None:
        """An httpx ``trace`` extension callback: marks the request sent once its body is written."""
        if event.endswith("send_request_body.complete"):
            self.mark_sent()


class KeyThrottle:
    """Spacing and in-flight limit for one customer key in one mode (see the module docstring)."""

    def __init__(
        self,
        mode: Mode,
        key_id: str,
        *,
        tier: Tier = "auto",
        intervals: Mapping[str, float] | None = None,
        max_in_flight: int | None = None,
        safety_margin: float | None = None,
    ) -> None:
        if mode not in _MODES:
            raise ValueError(f"unknown mode {mode!r}")
        if tier not in _TIERS:
            raise ValueError(f"unknown tier {tier!r}")
        merged = {**TIER_INTERVALS, **(intervals or {})}
        if any(v <= 0 for v in merged.values()):
            raise ValueError("tier intervals must be positive")
        if max_in_flight is not None and max_in_flight < 1:
            raise ValueError("max_in_flight must be at least 1")
        if safety_margin is not None and safety_margin < 0:
            raise ValueError("safety_margin must not be negative")
        self.mode: Mode = mode
        self.key_id = key_id
        self._tier: str = tier
        self._intervals = merged
        self._spaced = mode == "remote"
        self._interval = merged["full" if tier == "auto" else tier] if self._spaced else 0.0
        self._max_in_flight = max_in_flight or DEFAULT_IN_FLIGHT[mode]
        self._fixed_margin = safety_margin
        self._floor = _FLOOR
        self._learned = False  # tier "auto" switched to read_all

        self._loop: asyncio.AbstractEventLoop | None = None
        self._interactive: OrderedDict[int, _Waiter] = OrderedDict()
        self._bulk: OrderedDict[int, _Waiter] = OrderedDict()
        self._seq = 0
        self._in_flight = 0
        self._last_seq = -1  # the most recently granted slot
        self._last_start = -_INF
        self._last_rtt: float | None = None  # round trip of that slot, once it completed cleanly
        self._hold_until = -_INF  # set by throttle answers
        self._last_release = -_INF
        self._rtts: deque[float] = deque(maxlen=_WINDOW)
        self._timer: asyncio.TimerHandle | None = None
        self._dispatch_pending = False
        self._stats = ThrottleStats(tier=tier)
        self.on_start_lag: Callable[[float], None] | None = None
        """Called with each queued request's start lag in seconds (benchmarks, monitoring)."""

    def __repr__(self) -> str:
        return (
            f"<KeyThrottle {self.mode} key_id={self.key_id} tier={self._tier} interval={self.interval:g}"
            f" in_flight={self._in_flight}/{self._max_in_flight} queued={self.queued}>"
        )

    # -- public -------------------------------------------------------------------------------------

    def slot(self, priority: Priority = "bulk", *, retry: bool = False) -> ThrottleSlot:
        """Wait for this request's turn, then hold an in-flight slot until exit.

        ``retry=True`` queues at the front of its lane (a request the server refused, retried).
        """
        if priority not in _PRIORITIES:
            raise ValueError(f"unknown priority {priority!r}")
        return ThrottleSlot(self, priority, retry)

    def report_throttled(self, retry_after: float | None) -> None:
        """Record a throttle answer: learn the tier if "auto", then hold the key for a while."""
        self._stats.throttle_answers += 1
        if not self._spaced:
            # Local/Service are not throttled by the docs; honour Retry-After anyway.
            hold = max(retry_after or 0.0, 0.0)
        else:
            if self._tier == "auto" and not self._learned:
                self._learned = True
                self._interval = self._intervals["read_all"]
                logger.warning(
                    "key %s: the server throttled a request; tier auto now spaces requests %.3g s apart",
                    self.key_id,
                    self._interval,
                )
            elif self._fixed_margin is None:
                # The tier was right, so the margin was too small for this network.
                self._floor = min(self._floor + _FLOOR_STEP, max(self._interval / 2, _FLOOR))
            hold = max(retry_after or 0.0, self._interval)
        loop = self._loop
        now = loop.time() if loop is not None else asyncio.get_running_loop().time()
        self._hold_until = max(self._hold_until, now + hold)

    def stats(self) -> ThrottleStats:
        """A snapshot of this key's counters."""
        return replace(
            self._stats,
            in_flight=self._in_flight,
            queued=self.queued,
            interval=self.interval,
            tier="read_all" if self._learned else self._tier,
            margin=self._margin() if self._spaced else 0.0,
        )

    @property
    def interval(self) -> float:
        """The current interval between starts (0 for local/service)."""
        return self._interval

    @property
    def max_in_flight(self) -> int:
        """How many requests of this key may run at once (size connection pools from it)."""
        return self._max_in_flight

    @property
    def queued(self) -> int:
        """Waiters not yet granted."""
        return len(self._interactive) + len(self._bulk)

    @property
    def in_flight(self) -> int:
        return self._in_flight

    # -- margin -------------------------------------------------------------------------------------

    def _cap(self) -> float:
        return min(_MAX_EXTRA, max(_INITIAL_MARGIN, self._interval / 2))

    def _margin(self) -> float:
        """Extra spacing after the last start, from the round trips measured (module docstring)."""
        if self._fixed_margin is not None:
            return self._fixed_margin
        rtts = self._rtts
        n = len(rtts)
        if n < _MIN_SAMPLES:
            return max(_INITIAL_MARGIN, self._floor)
        low, high = min(rtts), max(rtts)
        span = high - low
        # With the previous round trip unknown (still running, or failed) assume the worst span seen.
        extra = span if self._last_rtt is None else self._last_rtt - (low - span / (n - 1))
        return min(max(extra, 0.0), self._cap()) + self._floor

    def _earliest(self) -> float:
        if not self._spaced:
            return self._hold_until
        return max(self._last_start + self._interval + self._margin(), self._hold_until)

    # -- scheduling ---------------------------------------------------------------------------------

    async def _acquire(self, priority: Priority, retry: bool) -> tuple[int, float]:
        loop = self._loop
        if loop is None:
            loop = self._loop = asyncio.get_running_loop()
        now = loop.time()
        self._seq += 1
        seq = self._seq
        if (
            not self._interactive
            and not self._bulk
            and self._in_flight < self._max_in_flight
            and now >= self._earliest()
        ):
            self._grant_bookkeeping(seq, now)
            self._last_start = now
            return seq, now

        lane = self._interactive if priority == "interactive" else self._bulk
        waiter = _Waiter(seq, lane, loop.create_future(), now)
        lane[seq] = waiter
        if retry:
            lane.move_to_end(seq, last=False)
        self._dispatch()
        try:
            await waiter.future
        except BaseException:
            self._abandon(waiter)
            raise
        started = loop.time()
        if self._last_seq == seq:
            # The request really starts now, a loop turn or more after the grant.
            self._last_start = max(self._last_start, started)
        lag = started - waiter.eligible
        if lag > self._stats.max_start_lag:
            self._stats.max_start_lag = lag
        if self.on_start_lag is not None:
            self.on_start_lag(lag)
        return seq, started

    def _grant_bookkeeping(self, seq: int, now: float) -> None:
        self._in_flight += 1
        self._last_seq = seq
        self._last_rtt = None
        self._stats.requests += 1

    def _grant(self, waiter: _Waiter, now: float, earliest: float) -> None:
        waiter.eligible = max(earliest, waiter.enqueued, self._last_release)
        waiter.prev_last_start = self._last_start
        waiter.prev_last_rtt = self._last_rtt
        self._grant_bookkeeping(waiter.seq, now)
        self._last_start = now
        waited = now - waiter.enqueued
        self._stats.waits += 1
        self._stats.wait_time += waited
        waiter.future.set_result(None)
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug(
                "key %s (%s): waited %.3f s for its turn; %d queued, %d in flight, interval %.3g s",
                self.key_id,
                self.mode,
                waited,
                self.queued,
                self._in_flight,
                self._interval,
            )

    def _abandon(self, waiter: _Waiter) -> None:
        """A waiter left (cancelled) before its request started: give back what it took."""
        fut = waiter.future
        waiter.lane.pop(waiter.seq, None)
        if fut.done() and not fut.cancelled():
            # Granted, then cancelled before it resumed: the request never left.
            self._in_flight -= 1
            self._stats.requests -= 1
            if self._last_seq == waiter.seq:
                self._last_start = waiter.prev_last_start
                self._last_rtt = waiter.prev_last_rtt
                self._last_seq = -1
            self._schedule_dispatch()
        elif not self._interactive and not self._bulk and self._timer is not None:
            # Nobody left to wake; the others' turn does not depend on who queued ahead of them.
            self._timer.cancel()
            self._timer = None

    def _departed(self, seq: int) -> float:
        assert self._loop is not None
        now = self._loop.time()
        if seq == self._last_seq:
            self._last_start = max(self._last_start, now)
        return now

    def _release(self, seq: int, started: float, *, ok: bool) -> None:
        self._in_flight -= 1
        if self._loop is not None:
            self._last_release = self._loop.time()
        if self._spaced and ok:
            rtt = self._last_release - started
            self._rtts.append(rtt)
            if seq == self._last_seq:
                self._last_rtt = rtt
        # A failed or cancelled request may or may not have reached the server: _last_rtt stays unknown
        # and _margin() assumes the worst span seen. It may also have left later than its slot began (bytes
        # still being written when it was cancelled) or still be running there: so the next start counts from
        # the moment it was given up, as if it had left then.
        elif self._spaced and seq == self._last_seq:
            self._last_start = max(self._last_start, self._last_release)
        if self._interactive or self._bulk:
            self._schedule_dispatch()

    def _schedule_dispatch(self) -> None:
        # Deferred by one loop turn so that a throttle answer reported right after the slot is released
        # still holds back the next waiter.
        if not self._dispatch_pending and self._loop is not None:
            self._dispatch_pending = True
            self._loop.call_soon(self._dispatch)

    def _dispatch(self) -> None:
        self._dispatch_pending = False
        loop = self._loop
        assert loop is not None
        while self._in_flight < self._max_in_flight:
            lane = self._interactive or self._bulk
            if not lane:
                break
            now = loop.time()
            earliest = self._earliest()
            if now < earliest:
                self._arm(earliest)
                return
            _, waiter = lane.popitem(last=False)
            if waiter.future.done():  # cancelled; its task has not run its cleanup yet
                continue
            self._grant(waiter, now, earliest)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _arm(self, when: float) -> None:
        timer = self._timer
        if timer is not None:
            if timer.when() <= when:
                return  # fires first; _dispatch re-arms for the rest
            timer.cancel()
        assert self._loop is not None
        self._timer = self._loop.call_at(when, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._dispatch()


class ThrottleRegistry:
    """The throttles of one event loop, shared by every session on that loop."""

    def __init__(self) -> None:
        self._throttles: dict[tuple[str, str], KeyThrottle] = {}

    def for_key(
        self,
        mode: Mode,
        key_id: str,
        *,
        tier: Tier = "auto",
        intervals: Mapping[str, float] | None = None,
        max_in_flight: int | None = None,
        safety_margin: float | None = None,
    ) -> KeyThrottle:
        """The throttle of ``(mode, key_id)``, created on first use (the first caller's settings win).

        ``key_id`` is an opaque id the session derives from the customer key, never the key itself.
        """
        found = self._throttles.get((mode, key_id))
        if found is None:
            found = self._throttles[(mode, key_id)] = KeyThrottle(
                mode,
                key_id,
                tier=tier,
                intervals=intervals,
                max_in_flight=max_in_flight,
                safety_margin=safety_margin,
            )
        return found

    def stats(self) -> dict[tuple[str, str], ThrottleStats]:
        """Snapshots of every key's counters, by ``(mode, key_id)``."""
        return {k: t.stats() for k, t in self._throttles.items()}

    def __len__(self) -> int:
        return len(self._throttles)
