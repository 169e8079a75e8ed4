"""Unit tests of the per-key throttle: real loop time, short intervals, waiting on events, never on luck."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable

import anyio
import pytest

from odapi_async._throttle.backend import ProcessThrottle
from odapi_async._throttle.key import TIER_INTERVALS, KeyThrottle
from support import for_key

T = 0.02  # interval for most tests
FAST = {"full": T, "read_all": 0.06, "enterprise": 0.01}


def remote(**kw: object) -> KeyThrottle:
    kw.setdefault("tier", "full")
    kw.setdefault("intervals", FAST)
    kw.setdefault("safety_margin", 0.0)
    return KeyThrottle("remote", "kid", **kw)  # type: ignore[arg-type]


async def until(pred: Callable[[], bool], timeout: float = 5.0) -> None:  # noqa: ASYNC109
    """Yield to the loop until ``pred()`` holds (state reached by other tasks)."""
    with anyio.fail_after(timeout):
        while not pred():  # noqa: ASYNC110 (the throttle exposes no event for this)
            await asyncio.sleep(0.0005)


def assert_idle(t: KeyThrottle) -> None:
    assert t.queued == 0
    assert t.in_flight == 0
    assert not t._lanes
    assert not t.timer_armed


async def run_recording(
    t: KeyThrottle, n: int, *, hold: float = 0.0, priority: str = "bulk"
) -> list[tuple[int, float]]:
    loop = asyncio.get_running_loop()
    starts: list[tuple[int, float]] = []

    async def one(i: int) -> None:
        async with t.slot(priority):  # type: ignore[arg-type]
            starts.append((i, loop.time()))
            if hold:
                await asyncio.sleep(hold)

    tasks = []
    for i in range(n):
        tasks.append(asyncio.create_task(one(i)))
        await asyncio.sleep(0)  # enqueue in a known order
    await asyncio.gather(*tasks)
    return starts


# -- spacing, FIFO, in-flight ----------------------------------------------------------------------


async def test_remote_spacing_and_fifo() -> None:
    t = remote()
    starts = await run_recording(t, 12)
    assert [i for i, _ in starts] == list(range(12))
    gaps = [b - a for (_, a), (_, b) in zip(starts, starts[1:])]
    assert min(gaps) >= T - 1e-4
    assert_idle(t)
    s = t.stats()
    assert s.requests == 12 and s.waits == 11 and s.wait_time > 0


async def test_fixed_margin_adds_to_interval() -> None:
    t = remote(safety_margin=0.01)
    starts = await run_recording(t, 5)
    gaps = [b - a for (_, a), (_, b) in zip(starts, starts[1:])]
    assert min(gaps) >= T + 0.01 - 1e-4


async def test_remote_one_in_flight_even_after_interval() -> None:
    t = remote()
    gate = asyncio.Event()
    order: list[str] = []

    async def holder() -> None:
        async with t.slot():
            order.append("a")
            await gate.wait()
        order.append("a-done")

    async def follower() -> None:
        async with t.slot():
            order.append("b")

    a = asyncio.create_task(holder())
    await until(lambda: order == ["a"])
    b = asyncio.create_task(follower())
    await until(lambda: t.queued == 1)
    await asyncio.sleep(3 * T)  # the interval is long over; only the in-flight cap holds b back now
    assert order == ["a"] and t.queued == 1 and t.in_flight == 1
    assert not t.timer_armed  # blocked by in-flight, not time: no timer armed
    gate.set()
    await asyncio.gather(a, b)
    assert order == ["a", "a-done", "b"]
    assert_idle(t)


async def test_remote_slow_request_then_next_starts_promptly() -> None:
    # A request that runs longer than T: the next starts right after it ends, not a further T later.
    t = remote()
    loop = asyncio.get_running_loop()
    ends: list[float] = []
    starts: list[float] = []

    async def one(hold: float) -> None:
        async with t.slot():
            starts.append(loop.time())
            await asyncio.sleep(hold)
            ends.append(loop.time())

    await asyncio.gather(one(3 * T), one(0))
    assert starts[1] >= ends[0]
    assert starts[1] - ends[0] < T


async def test_max_in_flight_override_on_remote() -> None:
    t = remote(max_in_flight=3)
    peak = 0
    gate = asyncio.Event()

    async def one() -> None:
        nonlocal peak
        async with t.slot():
            peak = max(peak, t.in_flight)
            await gate.wait()

    tasks = [asyncio.create_task(one()) for _ in range(5)]
    await until(lambda: t.in_flight == 3)
    assert t.queued == 2
    gate.set()
    await asyncio.gather(*tasks)
    assert peak == 3
    assert_idle(t)


@pytest.mark.parametrize("mode", ["local", "service"])
async def test_local_no_spacing_but_in_flight_cap(mode: str) -> None:
    t = KeyThrottle(mode, "kid")  # type: ignore[arg-type]
    assert t.interval == 0 and t.max_in_flight == 8
    gate = asyncio.Event()
    peak = 0

    async def one() -> None:
        nonlocal peak
        async with t.slot():
            peak = max(peak, t.in_flight)
            await gate.wait()

    tasks = [asyncio.create_task(one()) for _ in range(20)]
    await until(lambda: t.in_flight == 8 and t.queued == 12)
    gate.set()
    await asyncio.gather(*tasks)
    assert peak == 8
    assert t.stats().requests == 20
    assert_idle(t)


async def test_local_starts_are_not_spaced() -> None:
    t = KeyThrottle("local", "kid", tier="read_all")
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    await run_recording(t, 50)
    assert loop.time() - t0 < 0.5  # read_all spacing would take 245 s


# -- priority lanes ---------------------------------------------------------------------------------


async def test_interactive_overtakes_queued_bulk() -> None:
    t = remote()
    gate = asyncio.Event()
    order: list[str] = []

    async def one(name: str, priority: str) -> None:
        async with t.slot(priority):  # type: ignore[arg-type]
            order.append(name)
            if name == "hold":
                await gate.wait()

    tasks = [asyncio.create_task(one("hold", "bulk"))]
    await until(lambda: order == ["hold"])
    for i in range(5):
        tasks.append(asyncio.create_task(one(f"b{i}", "bulk")))
    await until(lambda: t.queued == 5)
    for i in range(2):
        tasks.append(asyncio.create_task(one(f"i{i}", "interactive")))
    await until(lambda: t.queued == 7)
    gate.set()
    await asyncio.gather(*tasks)
    assert order == ["hold", "i0", "i1", "b0", "b1", "b2", "b3", "b4"]
    assert_idle(t)


async def test_retry_goes_to_front_of_its_lane() -> None:
    t = remote()
    gate = asyncio.Event()
    order: list[str] = []

    async def one(name: str, retry: bool = False) -> None:
        async with t.slot(retry=retry):
            order.append(name)
            if name == "hold":
                await gate.wait()

    tasks = [asyncio.create_task(one("hold"))]
    await until(lambda: order == ["hold"])
    tasks += [asyncio.create_task(one(f"b{i}")) for i in range(3)]
    await until(lambda: t.queued == 3)
    tasks.append(asyncio.create_task(one("again", retry=True)))
    await until(lambda: t.queued == 4)
    gate.set()
    await asyncio.gather(*tasks)
    assert order == ["hold", "again", "b0", "b1", "b2"]


# -- cancellation -----------------------------------------------------------------------------------


async def test_cancelled_waiter_consumes_nothing() -> None:
    t = remote()
    loop = asyncio.get_running_loop()
    gate = asyncio.Event()
    starts: dict[str, float] = {}

    async def one(name: str) -> None:
        async with t.slot():
            starts[name] = loop.time()
            if name == "a":
                await gate.wait()

    a = asyncio.create_task(one("a"))
    await until(lambda: "a" in starts)
    b = asyncio.create_task(one("b"))
    c = asyncio.create_task(one("c"))
    await until(lambda: t.queued == 2)
    b.cancel()
    await asyncio.gather(b, return_exceptions=True)
    assert b.cancelled() and t.queued == 1
    gate.set()
    await asyncio.gather(a, c)
    assert "b" not in starts
    assert t.stats().requests == 2
    assert_idle(t)


async def test_granted_then_cancelled_before_resuming_gives_the_grant_back() -> None:
    t = remote(intervals={"full": 0.05})
    loop = asyncio.get_running_loop()
    a = t.slot()
    await a.__aenter__()
    a_start = loop.time()
    started: list[str] = []

    async def b_body() -> None:
        async with t.slot():
            started.append("b")

    b = asyncio.create_task(b_body())
    await until(lambda: t.queued == 1)
    await asyncio.sleep(0.06)  # a's interval is over: b becomes eligible as soon as a leaves
    await a.__aexit__(None, None, None)  # grants b: its task is woken ...
    b.cancel()  # ... and cancelled before it resumes
    await asyncio.gather(b, return_exceptions=True)
    assert b.cancelled() and started == []
    assert t.stats().requests == 1
    assert_idle(t)
    # The next start is spaced from a, not from b's unused grant.
    assert t._last_start == pytest.approx(a_start, abs=0.005)


async def test_cancelled_holder_releases_its_slot() -> None:
    t = remote()
    entered = asyncio.Event()

    async def holder() -> None:
        async with t.slot():
            entered.set()
            await asyncio.Event().wait()

    a = asyncio.create_task(holder())
    await entered.wait()
    a.cancel()
    await asyncio.gather(a, return_exceptions=True)
    assert_idle(t)
    with anyio.fail_after(1):
        async with t.slot():
            pass


async def test_timeout_while_waiting_leaves_nothing() -> None:
    t = remote(intervals={"full": 10.0})
    async with t.slot():
        pass
    with pytest.raises(TimeoutError):
        with anyio.fail_after(0.02):
            async with t.slot():
                pass
    assert_idle(t)


@pytest.mark.parametrize("mode", ["remote", "local"])
async def test_ten_thousand_cancellations_leave_nothing_behind(mode: str) -> None:
    if mode == "remote":
        t = KeyThrottle("remote", "kid", tier="full", intervals={"full": 0.01}, max_in_flight=2)
    else:
        t = KeyThrottle("local", "kid")
    rng = random.Random(4)
    cancelled = 0
    held = 0

    async def one() -> None:
        nonlocal held
        async with t.slot(rng.choice(["bulk", "interactive"])):  # type: ignore[arg-type]
            held += 1
            await asyncio.Event().wait()  # holds until cancelled

    for _ in range(10):
        tasks = [asyncio.create_task(one()) for _ in range(1000)]
        await until(lambda: t.queued + t.in_flight == 1000)
        rng.shuffle(tasks)
        for i, task in enumerate(tasks):
            task.cancel()
            if i % 97 == 0:
                await asyncio.sleep(0)  # let grants happen while cancelling
        await asyncio.gather(*tasks, return_exceptions=True)
        cancelled += sum(task.cancelled() for task in tasks)
        assert_idle(t)
    assert cancelled == 10_000
    assert held > 0  # some were holders when cancelled, not only waiters
    assert t.stats().requests == held
    # Still usable afterwards.
    with anyio.fail_after(1):
        async with t.slot():
            pass


# -- throttle answers and tiers ---------------------------------------------------------------------


async def test_auto_starts_at_full_and_learns_read_all_once(caplog: pytest.LogCaptureFixture) -> None:
    t = KeyThrottle("remote", "kid-7", tier="auto", intervals={"full": 0.02, "read_all": 0.1})
    assert t.interval == 0.02 and t.stats().tier == "auto"
    loop = asyncio.get_running_loop()
    with caplog.at_level(logging.WARNING, logger="odapi_async.throttle"):
        async with t.slot():
            pass
        t.report_throttled(None)
        t.report_throttled(0.01)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "kid-7" in warnings[0].getMessage()
    assert t.interval == 0.1 and t.stats().tier == "read_all"
    assert t.stats().throttle_answers == 2
    before = loop.time()
    async with t.slot():
        assert loop.time() - before >= 0.1 - 1e-3


async def test_retry_after_longer_than_interval_is_honoured() -> None:
    t = remote()
    loop = asyncio.get_running_loop()
    async with t.slot():
        pass
    t.report_throttled(0.08)
    before = loop.time()
    async with t.slot():
        assert loop.time() - before >= 0.08 - 1e-3


async def test_throttle_answer_reported_through_the_slot_holds_next_waiter() -> None:
    # The request path reports the 429 before it leaves the slot; a queued waiter must not slip through.
    t = remote()
    loop = asyncio.get_running_loop()
    a = t.slot()
    await a.__aenter__()
    b_start: list[float] = []

    async def b_body() -> None:
        async with t.slot():
            b_start.append(loop.time())

    b = asyncio.create_task(b_body())
    await until(lambda: t.queued == 1)
    await asyncio.sleep(2 * T)
    now = loop.time()
    a.report_throttled(0.05)
    await a.__aexit__(None, None, None)
    await b
    assert b_start[0] - now >= 0.05 - 1e-3


async def test_fixed_tier_throttle_answer_widens_adaptive_floor() -> None:
    t = KeyThrottle("remote", "kid", tier="full", intervals=FAST)
    floor = t._margin._floor
    t.report_throttled(None)
    assert t._margin._floor > floor and t.interval == T


async def test_enterprise_and_defaults() -> None:
    assert TIER_INTERVALS == {"read_all": 5.0, "full": 1.0, "enterprise": 0.5}
    assert KeyThrottle("remote", "k", tier="enterprise").interval == 0.5
    assert KeyThrottle("remote", "k", tier="auto").interval == 1.0
    assert KeyThrottle("remote", "k", tier="read_all").interval == 5.0
    assert KeyThrottle("remote", "k").max_in_flight == 1
    assert KeyThrottle("service", "k", max_in_flight=3).max_in_flight == 3


@pytest.mark.parametrize(
    "kwargs",
    [
        {"mode": "cloud"},
        {"tier": "gold"},
        {"intervals": {"full": 0}},
        {"max_in_flight": 0},
        {"safety_margin": -1},
    ],
)
def test_bad_settings_are_rejected(kwargs: dict[str, object]) -> None:
    mode = kwargs.pop("mode", "remote")
    with pytest.raises(ValueError):
        KeyThrottle(mode, "k", **kwargs)  # type: ignore[arg-type]


async def test_bad_priority_is_rejected() -> None:
    with pytest.raises(ValueError):
        remote().slot("urgent")  # type: ignore[arg-type]


# -- adaptive margin --------------------------------------------------------------------------------


def test_adaptive_margin_from_round_trips() -> None:
    t = KeyThrottle("remote", "kid", tier="full")
    assert t._margin.margin(t.interval, t._last_rtt) == pytest.approx(0.05)  # nothing measured yet
    for rtt in [0.060, 0.042, 0.051, 0.078, 0.045]:  # n=5, min 42 ms, span 36 ms
        t._margin._rtts.append(rtt)
    est_min = 0.042 - 0.036 / 5**0.5  # sums of two spreads: below the least sum seen
    t._last_rtt = 0.078  # the previous request arrived late: wait longer
    assert t._margin.margin(t.interval, t._last_rtt) == pytest.approx(0.078 - est_min + 0.002)
    t._last_rtt = 0.042  # it was among the fastest: little extra
    assert t._margin.margin(t.interval, t._last_rtt) == pytest.approx(0.042 - est_min + 0.002)
    t._last_rtt = None  # still running: the worst span seen
    assert t._margin.margin(t.interval, t._last_rtt) == pytest.approx(0.036 + 0.002)
    t._margin._rtts.append(5.0)  # one very slow execution cannot stall the key
    t._last_rtt = 5.0
    assert t._margin.margin(t.interval, t._last_rtt) == pytest.approx(0.1 + 0.002)


async def test_round_trips_are_measured_per_slot() -> None:
    t = KeyThrottle("remote", "kid", tier="full", intervals={"full": 0.001})
    for _ in range(6):
        async with t.slot():
            await asyncio.sleep(0.01)
    assert len(t._margin._rtts) == 6 and min(t._margin._rtts) >= 0.01 - 1e-3
    assert t._last_rtt is not None
    assert 0 < t.stats().margin <= 0.05


# -- registry, many keys, logging -------------------------------------------------------------------


def test_registry_shares_per_mode_and_key() -> None:
    reg = ProcessThrottle()
    a = for_key(reg, "remote", "k1", tier="full")
    assert for_key(reg, "remote", "k1") is a
    assert for_key(reg, "remote", "k2") is not a
    assert for_key(reg, "local", "k1") is not a
    assert set(reg.stats()) == {("remote", "k1"), ("remote", "k2"), ("local", "k1")}
    assert len(reg) == 3
    assert reg.stats()[("remote", "k1")].tier == "full"


async def test_keys_do_not_wait_on_each_other() -> None:
    reg = ProcessThrottle()
    k1 = for_key(reg, "remote", "k1", tier="full", intervals={"full": 10.0})
    k2 = for_key(reg, "remote", "k2", tier="full", intervals={"full": 0.01}, safety_margin=0.0)
    async with k1.slot():
        pass
    blocked = asyncio.create_task(run_recording(k1, 1))
    await until(lambda: k1.queued == 1)
    with anyio.fail_after(2):
        starts = await run_recording(k2, 5)
    assert len(starts) == 5 and k1.queued == 1
    blocked.cancel()
    await asyncio.gather(blocked, return_exceptions=True)


async def test_many_keys_use_one_timer_each_at_most_and_none_when_idle() -> None:
    reg = ProcessThrottle()
    keys = [
        for_key(reg, "remote", f"k{i}", tier="full", intervals={"full": 0.05}, safety_margin=0.0)
        for i in range(500)
    ]
    loop = asyncio.get_running_loop()
    before = len(loop._scheduled)  # type: ignore[attr-defined]
    done = 0

    async def one(t: KeyThrottle) -> None:
        nonlocal done
        async with t.slot():
            done += 1

    tasks = [asyncio.create_task(one(t)) for t in keys for _ in range(4)]
    await until(lambda: done >= 500)  # everyone's first request ran; three wait per key
    armed = sum(t.timer_armed for t in keys)
    assert armed <= 500
    scheduled = len(loop._scheduled) - before  # type: ignore[attr-defined]
    assert scheduled <= 500 + 5, (scheduled, armed)
    await asyncio.gather(*tasks)
    assert done == 2000
    left = [(t.timer_armed, t.queued, t.in_flight) for t in keys if t.timer_armed or t.queued or t.in_flight]
    assert not left


async def test_debug_log_for_waits_names_key_id_only(caplog: pytest.LogCaptureFixture) -> None:
    t = KeyThrottle("remote", "abc123", tier="full", intervals={"full": 0.01})
    with caplog.at_level(logging.DEBUG, logger="odapi_async.throttle"):
        await run_recording(t, 3)
    msgs = [r.getMessage() for r in caplog.records if r.name == "odapi_async.throttle"]
    assert len(msgs) == 2 and all("abc123" in m and "waited" in m for m in msgs)


def test_repr_and_stats_are_snapshots() -> None:
    t = remote()
    s = t.stats()
    s.requests = 99
    assert t.stats().requests == 0
    assert "kid" in repr(t)


# -- departure marking ------------------------------------------------------------------------------


async def test_spacing_counts_from_the_marked_departure() -> None:
    t = remote()
    loop = asyncio.get_running_loop()
    async with t.slot() as slot:
        await asyncio.sleep(0.03)  # the client was busy: the request leaves late
        slot.mark_sent()
        sent = loop.time()
        slot.mark_sent()  # only the first call counts
    async with t.slot():
        started = loop.time()
    assert started - sent >= T - 1e-3  # from the slot's start alone it could have been T - 30 ms


async def test_trace_hook_marks_departure_on_body_complete() -> None:
    t = KeyThrottle("remote", "kid", tier="full", intervals={"full": 0.001})
    async with t.slot() as slot:
        await slot.trace("http11.send_request_headers.complete", {})
        assert slot._sent is None
        await asyncio.sleep(0.01)
        await slot.trace("http11.send_request_body.complete", {})
        assert slot._sent is not None
        await asyncio.sleep(0.02)
    # The round trip counts from the departure, not from taking the slot.
    assert t._margin._rtts[-1] == pytest.approx(0.02, abs=0.01)


async def test_marked_departure_keeps_arrivals_apart_when_the_client_lags() -> None:
    # Simulated: each request takes the slot, then the busy client writes it 0..40 ms later; the "server"
    # stamps arrival at the write. With mark_sent() the arrival spacing never drops below T, even with no
    # margin at all.
    t = KeyThrottle("remote", "kid", tier="full", intervals={"full": T}, safety_margin=0.0)
    loop = asyncio.get_running_loop()
    rng = random.Random(5)
    arrivals: list[float] = []

    async def one() -> None:
        async with t.slot() as slot:
            await asyncio.sleep(rng.uniform(0, 0.04))
            arrivals.append(loop.time())
            slot.mark_sent()
            await asyncio.sleep(0.005)

    await asyncio.gather(*[one() for _ in range(25)])
    assert min(b - a for a, b in zip(arrivals, arrivals[1:])) >= T - 1e-3


# ----------------------------------------------------------------------------------------------------
# Folded in from tests/unit/test_throttle_give_back.py: ``ThrottleSlot.give_back()``: a turn whose request never left (a shared throttle behind said no).


async def test_a_given_back_turn_frees_the_slot_and_counts_nothing() -> None:
    throttle = KeyThrottle("local", "kid", max_in_flight=1)
    slot = throttle.slot()
    await slot.__aenter__()
    waiting = asyncio.create_task(throttle.slot().__aenter__())
    await asyncio.sleep(0)
    assert throttle.in_flight == 1 and throttle.queued == 1
    slot.give_back()
    await asyncio.wait_for(waiting, 1)  # the next waiter is granted at once
    await slot.__aexit__(None, None, None)  # a no-op after give_back
    assert throttle.in_flight == 1  # only the second one holds the key
    assert throttle.stats().requests == 1  # the given-back turn is not counted


async def test_give_back_on_a_spaced_key_keeps_the_previous_start() -> None:
    throttle = KeyThrottle("remote", "kid", tier="full", intervals={"full": 0.05}, safety_margin=0.0)
    async with throttle.slot():
        pass
    slot = throttle.slot()
    await slot.__aenter__()
    slot.give_back()
    loop = asyncio.get_running_loop()
    started = loop.time()
    async with throttle.slot():
        waited = loop.time() - started
    # Conservative: the given-back turn's start still counts, so the next one waits about one interval.
    assert 0.03 <= waited <= 0.2
