"""The key throttle's scheduling on a fake clock: exact start times, no sleeping, no tolerance.

The throttle takes its clock and its timer (``clock=``, ``call_later=``), so here time moves only when a test
says so, and every start is known to the microsecond. The emulator-measured tests
(``tests/throttle/test_key_emulator.py``) still prove the real spacing at a server.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Callable

import pytest

from odapi_async._throttle.key import MAX_CANCEL_HOLD, KeyThrottle
from odapi_async._throttle.lanes import MAX_OVERTAKES

#: Turns of the loop a test lets pass for woken tasks to run (each needs one or two).
SETTLE = 20
#: The smallest step the tests take: a power of two, so every sum of steps is exact in binary.
TICK = 2.0**-20


class FakeTime:
    """A clock that moves only on :meth:`advance`, and the timers armed on it (fired in order of due time)."""

    def __init__(self) -> None:
        self.now = 0.0
        self._timers: list[tuple[float, int, Callable[[], None]]] = []
        self._order = itertools.count()
        self.armed = 0  # timers armed so far

    def clock(self) -> float:
        return self.now

    def call_later(self, loop: asyncio.AbstractEventLoop, delay: float, callback: Callable[[], None]) -> None:
        assert loop is asyncio.get_running_loop()  # armed in the waiter's own loop
        assert delay >= 0
        self.armed += 1
        heapq.heappush(self._timers, (self.now + delay, next(self._order), callback))

    async def advance(self, seconds: float) -> None:
        """Move the clock on by ``seconds``, firing each timer at its due time, and let woken tasks run."""
        end = self.now + seconds
        await settle()
        while self._timers and self._timers[0][0] <= end:
            due, _, callback = heapq.heappop(self._timers)
            self.now = max(self.now, due)
            callback()
            await settle()
        self.now = end
        await settle()

    @property
    def pending(self) -> int:
        return len(self._timers)


async def settle() -> None:
    for _ in range(SETTLE):
        await asyncio.sleep(0)


def throttle(fake: FakeTime, mode: str = "remote", **kw: object) -> KeyThrottle:
    kw.setdefault("tier", "full")
    kw.setdefault("intervals", {"full": 1.0})
    kw.setdefault("safety_margin", 0.0)
    return KeyThrottle(mode, "kid", clock=fake.clock, call_later=fake.call_later, **kw)  # type: ignore[arg-type]


class Recorder:
    """Requests through one throttle, recording when (on the fake clock) each one started."""

    def __init__(self, fake: FakeTime, t: KeyThrottle) -> None:
        self.fake, self.t = fake, t
        self.starts: dict[str, float] = {}
        self.gates: dict[str, asyncio.Event] = {}
        self.tasks: dict[str, asyncio.Task[None]] = {}

    async def _one(self, name: str, priority: str, retry: bool) -> None:
        async with self.t.slot(priority, retry=retry):  # type: ignore[arg-type]
            self.starts[name] = self.fake.now
            await self.gates[name].wait()

    async def start(
        self, name: str, priority: str = "bulk", *, hold: bool = False, retry: bool = False
    ) -> None:
        """Queue a request (``hold``: it stays in flight until :meth:`finish`); returns once it waits or runs."""
        self.gates[name] = asyncio.Event()
        if not hold:
            self.gates[name].set()
        self.tasks[name] = asyncio.create_task(self._one(name, priority, retry))
        await settle()

    async def finish(self, name: str) -> None:
        self.gates[name].set()
        await asyncio.wait_for(self.tasks[name], 1)
        await settle()

    async def done(self) -> None:
        for gate in self.gates.values():
            gate.set()
        await asyncio.wait_for(asyncio.gather(*self.tasks.values()), 1)


async def test_each_start_waits_exactly_one_interval_plus_the_margin() -> None:
    fake = FakeTime()
    r = Recorder(fake, throttle(fake, safety_margin=0.25))
    for name in "abcd":
        await r.start(name)
    assert r.starts == {"a": 0.0}  # the rest wait for time, on one timer
    assert fake.pending == 1 and r.t.queued == 3
    await fake.advance(1.25 - TICK)
    assert set(r.starts) == {"a"}  # a tick early: nothing starts
    await fake.advance(TICK)
    assert r.starts == {"a": 0.0, "b": 1.25}
    await fake.advance(10)
    assert r.starts == {"a": 0.0, "b": 1.25, "c": 2.5, "d": 3.75}
    await r.done()
    assert r.t.queued == 0 and not r.t.timer_armed and fake.pending == 0


async def test_one_in_flight_on_remote_even_after_the_interval() -> None:
    fake = FakeTime()
    r = Recorder(fake, throttle(fake))
    await r.start("slow", hold=True)
    await r.start("next")
    await fake.advance(5.0)  # five intervals: still one in flight
    assert set(r.starts) == {"slow"} and r.t.in_flight == 1
    await r.finish("slow")  # it ends at t=5: the next starts at once, without a timer
    assert r.starts["next"] == 5.0
    await r.done()


async def test_local_has_no_spacing_only_its_in_flight_cap() -> None:
    fake = FakeTime()
    r = Recorder(fake, throttle(fake, mode="local", max_in_flight=2))
    for name in "abc":
        await r.start(name, hold=True)
    assert r.starts == {"a": 0.0, "b": 0.0} and r.t.queued == 1
    assert fake.armed == 0  # nothing waits for time, so no timer
    await fake.advance(0.5)
    await r.finish("a")
    assert r.starts["c"] == 0.5
    await r.done()
    assert fake.armed == 0


async def test_interactive_overtakes_bulk_but_a_waiting_bulk_head_is_not_starved() -> None:
    fake = FakeTime()
    r = Recorder(fake, throttle(fake))
    await r.start("first")
    await r.start("bulk")
    for i in range(MAX_OVERTAKES + 2):
        await r.start(f"ui{i}", "interactive")
    await fake.advance(100)
    order = sorted(r.starts, key=r.starts.__getitem__)
    overtakers = [f"ui{i}" for i in range(MAX_OVERTAKES)]
    assert order == ["first", *overtakers, "bulk", f"ui{MAX_OVERTAKES}", f"ui{MAX_OVERTAKES + 1}"]
    assert [r.starts[name] for name in order] == [float(i) for i in range(len(order))]
    await r.done()


async def test_a_retry_goes_to_the_front_of_its_lane() -> None:
    fake = FakeTime()
    r = Recorder(fake, throttle(fake))
    await r.start("first")
    await r.start("b0")
    await r.start("b1")
    await r.start("again", retry=True)
    await fake.advance(10)
    assert r.starts == {"first": 0.0, "again": 1.0, "b0": 2.0, "b1": 3.0}
    await r.done()


async def test_a_throttle_answer_holds_the_key_for_its_retry_after() -> None:
    fake = FakeTime()
    r = Recorder(fake, throttle(fake))
    await r.start("a", hold=True)
    await r.start("b")
    await fake.advance(0.5)
    r.t.report_throttled(3.0)  # reported before the slot is left, as the request path does
    await r.finish("a")
    await fake.advance(3.0 - TICK)
    assert "b" not in r.starts
    await fake.advance(TICK)
    assert r.starts["b"] == 3.5
    await r.done()


async def test_a_retry_after_beyond_max_wait_is_cut_to_it() -> None:
    fake = FakeTime()
    r = Recorder(fake, throttle(fake))
    await r.start("a")
    r.t.report_throttled(3600.0, max_wait=2.0)
    await r.start("b")
    await fake.advance(10)
    assert r.starts["b"] == 2.0
    await r.done()


async def test_a_request_given_up_after_it_left_occupies_the_key_until_its_estimated_end() -> None:
    fake = FakeTime()
    r = Recorder(fake, throttle(fake))
    await r.start("a", hold=True)
    await r.start("b")
    await fake.advance(0.25)
    r.tasks.pop("a").cancel()  # the caller gives up; the server may still be running it
    await settle()
    assert "b" not in r.starts
    # The next start counts from the give-up as if the request left then (0.25 + T), and not before its
    # estimated end on the server: its departure (0) plus the larger of T and the slowest round trip (T).
    await fake.advance(1.0 - TICK)
    assert "b" not in r.starts
    await fake.advance(TICK)
    assert r.starts["b"] == 1.25
    del r.gates["a"]
    await r.done()


async def test_the_cancel_hold_follows_the_slowest_round_trip_but_is_capped() -> None:
    fake = FakeTime()
    r = Recorder(fake, throttle(fake))
    await r.start("slow", hold=True)
    await fake.advance(100.0)  # a clean round trip of 100 s: the slowest seen
    await r.finish("slow")
    await r.start("a", hold=True)
    assert r.starts["a"] == 100.0  # spaced from slow's start, long past
    await r.start("b")
    r.tasks.pop("a").cancel()  # given up at once: its estimated end is 100 s away, held for 30 at most
    del r.gates["a"]
    await fake.advance(MAX_CANCEL_HOLD + 10)
    assert r.starts["b"] == 100.0 + MAX_CANCEL_HOLD
    await r.done()


async def test_a_cancelled_waiter_consumes_no_turn_and_an_idle_key_keeps_no_timer() -> None:
    fake = FakeTime()
    r = Recorder(fake, throttle(fake))
    await r.start("a")
    await r.start("b")
    await r.start("c")
    r.tasks["b"].cancel()
    await asyncio.gather(r.tasks["b"], return_exceptions=True)
    await fake.advance(10)
    assert r.starts == {"a": 0.0, "c": 1.0}
    del r.tasks["b"], r.gates["b"]
    await r.done()
    assert r.t.queued == 0 and r.t.in_flight == 0 and not r.t.timer_armed


@pytest.mark.parametrize(("tier", "interval"), [("full", 1.0), ("read_all", 5.0), ("enterprise", 0.5)])
async def test_the_tier_sets_the_interval(tier: str, interval: float) -> None:
    fake = FakeTime()
    r = Recorder(fake, throttle(fake, tier=tier, intervals=None))
    for name in "abc":
        await r.start(name)
    await fake.advance(60)
    assert r.starts == {"a": 0.0, "b": interval, "c": 2 * interval}
    await r.done()
