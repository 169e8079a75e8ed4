"""One customer key in one mode, for the whole process: spacing, in-flight cap, lanes, across loops and threads.

Open Dental's Remote mode allows one request per interval *T* per customer key (5 s ``read_all``, 1 s
``full``, 0.5 s ``enterprise``), and the interval includes the request's own execution. So, per key:

* a request may start no sooner than ``T + margin`` after the previous one *started* (``_throttle/margin.py``);
* at most ``max_in_flight`` (default 1) run at once, so a slow request is never overlapped by the next;
* Local and Service modes have no interval, only an in-flight cap (default 8) that protects the office server.

Per process. The state lives in one :class:`KeyThrottle` per (mode, key) that every event loop and thread of the
process shares (a sync worker calling ``asyncio.run`` per job keeps its spacing and its learned tier). The clock
is ``time.monotonic()`` and the timer the waiter's loop's ``call_later``, unless the throttle is given others
(``clock=``, ``call_later=``: a test's fake time, which makes scheduling deterministic); a ``threading.Lock``
guards the state for the few microseconds of each decision. No loop is referenced except by a waiter while it
waits.

Waiting is event-driven in each waiter's own loop: a waiter is a future of its loop. A release in one loop that
grants a waiter of another loop resolves it with ``call_soon_threadsafe``. When the head of the queue is blocked
only by time, one timer is armed, in the head waiter's loop (a loop that closes takes its waiters with it, so the
timer never lives where nobody waits). An idle key holds no timer.

Cancellation. A waiter cancelled before its turn consumes nothing; one cancelled between its grant and its
resumption gives the grant back. A Remote request cancelled after it left is not cut off: the attempt
(``_attempt.py``) lets its exchange finish in the background, so its slot is released when the office has
answered. A slot left with an error after the request left (a reset, a deadline, the loop ending) may still be
running on the server, which counts the interval from its arrival and refuses anything while it runs: the key
stays occupied until the request's estimated end (its departure plus the larger of T and the key's slowest
recent round trip, capped at :data:`MAX_CANCEL_HOLD`).

Departure. The slot's start is when the waiting task resumes; a busy client may write the request later.
``slot.mark_sent()``, or httpx's ``trace`` extension set to ``slot.trace``, records the real departure.

Why not aiolimiter. ``AsyncLimiter(1, T)`` is a leaky bucket: it counts acquisitions, not starts or in-flight
requests, so a request that runs longer than T is overlapped by the next one (the server refuses it); it has no
lanes, no margin, is bound to one loop, and admits a burst at first use. A next-allowed-start time plus an
in-flight count is smaller than adapting a bucket to it.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import weakref
from collections.abc import Callable, Mapping
from dataclasses import replace
from types import TracebackType
from typing import Any

from odapi_async._settings import PRIORITIES, TIER_INTERVALS, KeySettings, Mode, Priority, ThrottleStats, Tier
from odapi_async._throttle.lanes import Lanes
from odapi_async._throttle.margin import MarginEstimator
from odapi_async._util.perloop import running_loop

__all__ = ["MAX_CANCEL_HOLD", "TIER_INTERVALS", "CallLater", "KeyThrottle", "ThrottleSlot"]

logger = logging.getLogger("odapi_async.throttle")

#: The longest a Remote key stays occupied by a request that was given up after it left.
MAX_CANCEL_HOLD = 30.0
_INF = float("inf")

#: Arms a timer: ``call_later(loop, delay, callback)`` runs ``callback`` in ``loop`` after ``delay`` seconds
#: (called in that loop's thread).
CallLater = Callable[[asyncio.AbstractEventLoop, float, Callable[[], None]], object]


def _loop_call_later(loop: asyncio.AbstractEventLoop, delay: float, callback: Callable[[], None]) -> object:
    return loop.call_later(delay, callback)


class _Waiter:
    __slots__ = (
        "eligible",
        "enqueued",
        "future",
        "granted",
        "interactive",
        "loop",
        "prev_last_rtt",
        "prev_last_start",
        "seq",
    )

    def __init__(self, seq: int, loop: asyncio.AbstractEventLoop, interactive: bool, now: float) -> None:
        self.seq = seq
        self.loop = loop
        self.future: asyncio.Future[None] = loop.create_future()
        self.interactive = interactive
        self.enqueued = now
        self.eligible = now
        self.granted = False
        self.prev_last_start = -_INF
        self.prev_last_rtt: float | None = None


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():  # cancelled meanwhile: the waiter's own cleanup gives the grant back
        future.set_result(None)


class ThrottleSlot:
    """One request's turn: ``async with throttle.slot() as slot: ...`` (see the module docstring)."""

    __slots__ = ("_priority", "_retry", "_sent", "_seq", "_started", "_throttle")

    def __init__(self, throttle: KeyThrottle, priority: Priority, retry: bool) -> None:
        self._throttle = throttle
        self._priority = priority
        self._retry = retry
        self._seq = -1
        self._started = 0.0
        self._sent: float | None = None

    @property
    def spaced(self) -> bool:
        """Whether departures matter (a Remote key): then pass :meth:`trace` to httpx."""
        return self._throttle.interval > 0

    async def __aenter__(self) -> ThrottleSlot:
        self._seq, self._started = await self._throttle._acquire(self._priority, self._retry)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._seq < 0:  # given back already
            return
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

    def report_throttled(self, retry_after: float | None, *, max_wait: float = _INF) -> None:
        """The server refused this request as too soon: hold the key (before this slot is released)."""
        self._throttle.report_throttled(retry_after, max_wait=max_wait)

    def give_back(self) -> None:
        """The request never left (a shared throttle behind this one said no): return the turn unused.

        The slot is released without counting a departure, a round trip or a hold; exiting it afterwards is a
        no-op. The previous start stays the reference for the next one (conservative: the turn is not reused).
        """
        if self._seq >= 0:
            seq, self._seq = self._seq, -1
            self._throttle._give_back(seq)


class KeyThrottle:
    """Spacing and in-flight limit for one customer key in one mode, shared by the whole process."""

    def __init__(
        self,
        mode: Mode,
        key_id: str,
        settings: KeySettings | None = None,
        *,
        tier: Tier = "auto",
        intervals: Mapping[str, float] | None = None,
        max_in_flight: int | None = None,
        safety_margin: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        call_later: CallLater = _loop_call_later,
    ) -> None:
        if settings is None:
            settings = KeySettings.build(
                mode,
                tier=tier,
                intervals=intervals,
                max_in_flight={mode: max_in_flight} if max_in_flight is not None else None,
                safety_margin=safety_margin,
            )
        self.mode: Mode = mode
        self.key_id = key_id
        self._clock = clock
        self._call_later = call_later
        self._settings = settings
        self._learned = False  # tier "auto" switched to read_all
        self._interval = settings.interval(mode)
        self._margin = MarginEstimator(settings.safety_margin)

        self._lock = threading.Lock()
        self._lanes: Lanes[_Waiter] = Lanes()
        self._seq = 0
        self._in_flight = 0
        self._last_seq = -1  # the most recently granted slot
        self._last_start = -_INF
        self._last_rtt: float | None = None  # round trip of that slot, once it completed cleanly
        self._hold_until = -_INF  # throttle answers and requests given up while they may still run
        self._last_release = -_INF
        self._timer_due = _INF  # when the armed timer fires (inf: none armed)
        self._timer_loop: weakref.ref[asyncio.AbstractEventLoop] | None = None
        self._stats = ThrottleStats(tier=settings.tier)
        self.on_start_lag: Callable[[float], None] | None = None
        """Called with each queued request's start lag in seconds (benchmarks, monitoring)."""

    def __repr__(self) -> str:
        return (
            f"<KeyThrottle {self.mode} key_id={self.key_id} tier={self._settings.tier}"
            f" interval={self._interval:g} in_flight={self._in_flight}/{self.max_in_flight}"
            f" queued={self.queued}>"
        )

    # -- public -------------------------------------------------------------------------------------

    def slot(self, priority: Priority = "bulk", *, retry: bool = False) -> ThrottleSlot:
        """Wait for this request's turn, then hold an in-flight slot until exit.

        ``retry=True`` queues at the front of its lane (a request the server refused, sent again).
        """
        if priority not in PRIORITIES:
            raise ValueError(f"unknown priority {priority!r}")
        return ThrottleSlot(self, priority, retry)

    @property
    def settings(self) -> KeySettings:
        return self._settings

    def configure(self, settings: KeySettings) -> None:
        """Apply another session's settings to this key: the last writer wins, and the change is logged."""
        with self._lock:
            old = self._settings
            if settings == old:
                return
            self._settings = settings
            if settings.tier != "auto" or old.tier != "auto":
                self._learned = False  # an explicit tier replaces what "auto" learned
            self._interval = settings.interval(self.mode, self._learned)
            self._margin.set_fixed(settings.safety_margin)
            grants, timer = self._dispatch(self._clock())
        changed = [
            f"{name} {getattr(old, name)!r} -> {getattr(settings, name)!r}"
            for name in ("tier", "intervals", "max_in_flight", "safety_margin")
            if getattr(old, name) != getattr(settings, name)
        ]
        logger.info("key %s (%s): a newer session changed %s", self.key_id, self.mode, "; ".join(changed))
        self._wake(grants, timer)

    def report_throttled(self, retry_after: float | None, *, max_wait: float = _INF) -> None:
        """Record a throttle answer: learn the tier if "auto", then hold the key for a while.

        The hold is Retry-After (or one interval, the full tier's on unthrottled modes) but never more than
        ``max_wait``: a server's absurd Retry-After must not freeze the key for hours.
        """
        with self._lock:
            self._stats.throttle_answers += 1
            settings = self._settings
            if self.mode != "remote":
                # Local/Service are not throttled by the docs; back off as on Remote all the same.
                hold = max(retry_after or 0.0, settings.intervals["full"])
            else:
                if settings.tier == "auto" and not self._learned:
                    self._learned = True
                    self._interval = settings.interval(self.mode, learned_read_all=True)
                    logger.warning(
                        "key %s: the server throttled a request; tier auto now spaces requests %.3g s apart",
                        self.key_id,
                        self._interval,
                    )
                else:
                    self._margin.widen(self._interval)  # the tier was right: the margin was too small
                hold = max(retry_after or 0.0, self._interval)
            self._hold_until = max(self._hold_until, self._clock() + min(hold, max_wait))

    def stats(self) -> ThrottleStats:
        """A snapshot of this key's counters."""
        with self._lock:
            return replace(
                self._stats,
                in_flight=self._in_flight,
                queued=len(self._lanes),
                interval=self._interval,
                tier="read_all" if self._learned else self._settings.tier,
                margin=self._margin.margin(self._interval, self._last_rtt) if self._interval else 0.0,
            )

    @property
    def interval(self) -> float:
        """The current interval between starts (0 for local/service)."""
        return self._interval

    @property
    def max_in_flight(self) -> int:
        """How many requests of this key may run at once (size connection pools from it)."""
        return self._settings.max_in_flight

    @property
    def queued(self) -> int:
        """Waiters not yet granted."""
        return len(self._lanes)

    @property
    def in_flight(self) -> int:
        return self._in_flight

    @property
    def timer_armed(self) -> bool:
        """Whether a wake-up is pending for a waiter blocked by time (never while the key is idle)."""
        return self._timer_due != _INF

    # -- scheduling (the lock is held in every method that reads or writes the state) ----------------

    def _earliest(self) -> float:
        if not self._interval:
            return self._hold_until
        start = self._last_start + self._interval + self._margin.margin(self._interval, self._last_rtt)
        return max(start, self._hold_until)

    async def _acquire(self, priority: Priority, retry: bool) -> tuple[int, float]:
        loop = asyncio.get_running_loop()
        with self._lock:
            now = self._clock()
            self._seq += 1
            seq = self._seq
            if not self._lanes and self._in_flight < self.max_in_flight and now >= self._earliest():
                self._take(seq)
                self._last_start = now
                return seq, now
            waiter = _Waiter(seq, loop, priority == "interactive", now)
            self._lanes.push(waiter, front=retry)
            grants, timer = self._dispatch(now)
        self._wake(grants, timer)
        try:
            await waiter.future
        except BaseException:
            self._abandon(waiter)
            raise
        started = self._clock()
        with self._lock:
            if self._last_seq == seq:
                # The request really starts now, a loop turn or more after the grant.
                self._last_start = max(self._last_start, started)
            lag = started - waiter.eligible
            if lag > self._stats.max_start_lag:
                self._stats.max_start_lag = lag
        if self.on_start_lag is not None:
            self.on_start_lag(lag)
        return seq, started

    def _take(self, seq: int) -> None:
        self._in_flight += 1
        self._last_seq = seq
        self._last_rtt = None
        self._stats.requests += 1

    def _grant(self, waiter: _Waiter, now: float, earliest: float) -> None:
        waiter.granted = True
        waiter.eligible = max(earliest, waiter.enqueued, self._last_release)
        waiter.prev_last_start = self._last_start
        waiter.prev_last_rtt = self._last_rtt
        self._take(waiter.seq)
        self._last_start = now
        self._stats.waits += 1
        self._stats.wait_time += now - waiter.enqueued
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug(
                "key %s (%s): waited %.3f s for its turn; %d queued, %d in flight, interval %.3g s",
                self.key_id,
                self.mode,
                now - waiter.enqueued,
                len(self._lanes),
                self._in_flight,
                self._interval,
            )

    def _abandon(self, waiter: _Waiter) -> None:
        """A waiter left (cancelled) before its request started: give back what it took."""
        with self._lock:
            if not waiter.granted:
                self._lanes.remove(waiter)
                if not self._lanes:  # nobody left to wake: the armed timer, if any, will find nothing to do
                    self._timer_due = _INF
                    self._timer_loop = None
                return
            # Granted, then cancelled before it resumed: the request never left.
            self._in_flight -= 1
            self._stats.requests -= 1
            self._stats.waits -= 1
            if self._last_seq == waiter.seq:
                self._last_start = waiter.prev_last_start
                self._last_rtt = waiter.prev_last_rtt
                self._last_seq = -1
            grants, timer = self._dispatch(self._clock())
        self._wake(grants, timer)

    def _departed(self, seq: int) -> float:
        now = self._clock()
        with self._lock:
            if seq == self._last_seq:
                self._last_start = max(self._last_start, now)
        return now

    def _give_back(self, seq: int) -> None:
        with self._lock:
            self._in_flight -= 1
            self._stats.requests -= 1
            if self._last_seq == seq:
                self._last_seq = -1
            grants, timer = self._dispatch(self._clock())
        self._wake(grants, timer)

    def _release(self, seq: int, sent: float, *, ok: bool) -> None:
        with self._lock:
            now = self._clock()
            self._in_flight -= 1
            self._last_release = now
            if self._interval and ok:
                rtt = now - sent
                self._margin.record(rtt)
                if seq == self._last_seq:
                    self._last_rtt = rtt
            elif self._interval:
                # Failed or cancelled: it may or may not have reached the server, and may still run there. The
                # next start counts from the moment it was given up, as if it had left then, and waits for its
                # estimated end on the server (module docstring, "Cancellation").
                if seq == self._last_seq:
                    self._last_start = max(self._last_start, now)
                running = min(max(self._interval, self._margin.slowest()), MAX_CANCEL_HOLD)
                self._hold_until = max(self._hold_until, sent + running)
            grants, timer = self._dispatch(now)
        self._wake(grants, timer)

    def _dispatch(self, now: float) -> tuple[list[_Waiter], tuple[asyncio.AbstractEventLoop, float] | None]:
        """Grant every waiter that may start now; name the timer to arm for the next one, if time blocks it."""
        grants: list[_Waiter] = []
        lanes = self._lanes
        while lanes and self._in_flight < self.max_in_flight:
            head = lanes.peek()
            if head.loop.is_closed() or head.future.done():
                lanes.pop()  # its loop is gone, or it was cancelled and its cleanup has not run yet
                continue
            earliest = self._earliest()
            if now < earliest:
                timer_loop = self._timer_loop() if self._timer_loop is not None else None
                if earliest < self._timer_due or timer_loop is not head.loop:
                    self._timer_due = earliest
                    self._timer_loop = weakref.ref(head.loop)
                    return grants, (head.loop, earliest)
                return grants, None
            lanes.pop()
            self._grant(head, now, earliest)
            grants.append(head)
        if not lanes:  # nobody waits: a timer still pending finds nothing to do when it fires
            self._timer_due = _INF
            self._timer_loop = None
        return grants, None

    def _wake(self, grants: list[_Waiter], timer: tuple[asyncio.AbstractEventLoop, float] | None) -> None:
        """Outside the lock: resolve granted waiters and arm the timer, each in its own loop."""
        current = running_loop() if grants or timer else None
        for waiter in grants:
            if waiter.loop is current:
                _resolve(waiter.future)
            else:
                try:
                    waiter.loop.call_soon_threadsafe(_resolve, waiter.future)
                except RuntimeError:  # its loop closed meanwhile: nobody will start; give the slot back
                    self._release(waiter.seq, self._clock(), ok=False)
        if timer is not None:
            loop, when = timer
            if loop is current:
                self._call_later(loop, max(0.0, when - self._clock()), self._on_timer)
            else:
                try:
                    loop.call_soon_threadsafe(
                        lambda: self._call_later(loop, max(0.0, when - self._clock()), self._on_timer)
                    )
                except RuntimeError:
                    pass  # closed: its waiters are dropped at the next dispatch

    def _on_timer(self) -> None:
        with self._lock:
            if self._timer_due <= self._clock() + 0.001:
                self._timer_due = _INF
                self._timer_loop = None
            grants, timer = self._dispatch(self._clock())
        self._wake(grants, timer)
