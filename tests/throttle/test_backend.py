"""Per-key state belongs to the process: threads and loops share it; settings, lanes, holds and re-sends."""

from __future__ import annotations

import asyncio
import logging
import threading
import time

import httpx
import pytest

from odapi_async import Hub, KeySettings, OpenDental, ProcessThrottle, ThrottleBackend, Throttled
from odapi_async._throttle.key import KeyThrottle
from odapi_async._throttle.lanes import MAX_OVERTAKES
from support import BASE, CUST_KEY, DEV_KEY, fast_retries


def remote(t: float = 0.02) -> KeyThrottle:
    return KeyThrottle("remote", "kid", tier="full", intervals={"full": t}, safety_margin=0.0)


def test_process_throttle_is_a_backend() -> None:
    assert isinstance(ProcessThrottle(), ThrottleBackend)


def test_stats_of_one_key_are_that_keys_modes_only_and_all_keys_without_one() -> None:
    # One key's stats come from an index by key id (a live table asks per row shown): same answer as a walk.
    backend = ProcessThrottle()
    for i in range(50):
        backend.key("remote", f"k{i}")
    backend.key("local", "k7")
    backend.key("service", "k7")
    assert list(backend.stats("k7")) == [("remote", "k7"), ("local", "k7"), ("service", "k7")]
    assert all(s.requests == 0 for s in backend.stats("k7").values())
    assert backend.stats("nobody") == {}
    everything = backend.stats()
    assert len(everything) == len(backend) == 52
    assert list(everything)[:3] == [("remote", "k0"), ("remote", "k1"), ("remote", "k2")]
    assert {k: v for k, v in everything.items() if k[1] == "k7"} == backend.stats("k7")


def test_a_slot_released_in_one_thread_wakes_a_waiter_in_another() -> None:
    # Thread A holds the only in-flight slot of a Local key; thread B's loop waits for it, event-driven.
    t = KeyThrottle("local", "kid", max_in_flight=1)
    held, release, b_started = threading.Event(), threading.Event(), threading.Event()
    b_wait: list[float] = []

    def a() -> None:
        async def run() -> None:
            async with t.slot():
                held.set()
                await asyncio.get_running_loop().run_in_executor(None, release.wait, 5)

        asyncio.run(run())

    def b() -> None:
        async def run() -> None:
            start = time.monotonic()
            async with t.slot():
                b_wait.append(time.monotonic() - start)
                b_started.set()

        asyncio.run(run())

    ta = threading.Thread(target=a)
    ta.start()
    assert held.wait(5)
    tb = threading.Thread(target=b)
    tb.start()
    deadline = time.monotonic() + 5
    while t.queued != 1 and time.monotonic() < deadline:
        time.sleep(0.001)
    assert t.queued == 1 and not b_started.is_set()
    release.set()
    assert b_started.wait(5)
    ta.join(5)
    tb.join(5)
    assert t.in_flight == 0 and t.queued == 0
    assert b_wait and b_wait[0] < 5


def test_spacing_holds_across_threads_each_with_its_own_loop() -> None:
    t = remote(0.02)
    starts: list[float] = []
    lock = threading.Lock()

    def worker() -> None:
        async def run() -> None:
            for _ in range(8):
                async with t.slot():
                    with lock:
                        starts.append(time.monotonic())

        asyncio.run(run())

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(20)
    starts.sort()
    assert len(starts) == 24
    assert min(b - a for a, b in zip(starts, starts[1:])) >= 0.02 - 1e-4
    assert t.in_flight == 0 and t.queued == 0


def test_spacing_and_learned_tier_survive_a_new_loop() -> None:
    t = KeyThrottle(
        "remote", "kid", tier="auto", intervals={"full": 0.02, "read_all": 0.06}, safety_margin=0.0
    )
    ends: list[float] = []

    async def job(report: bool) -> float:
        async with t.slot() as slot:
            if report:
                slot.report_throttled(None)
        start = time.monotonic()
        async with t.slot():
            pass
        return time.monotonic() - start

    asyncio.run(job(report=True))
    assert t.stats().tier == "read_all"
    ends.append(time.monotonic())
    waited = asyncio.run(
        job(report=False)
    )  # a new loop: still read_all, and the spacing counts from the last
    assert t.stats().tier == "read_all" and t.interval == 0.06
    assert waited >= 0.06 - 1e-3


async def test_bulk_waits_at_most_a_bounded_number_of_interactive_starts() -> None:
    t = remote(0.005)
    order: list[str] = []

    async def one(name: str, priority: str) -> None:
        async with t.slot(priority):  # type: ignore[arg-type]
            order.append(name)

    async with t.slot():  # hold the key while the queue forms
        tasks = [asyncio.create_task(one("bulk", "bulk"))]
        await asyncio.sleep(0)
        tasks += [asyncio.create_task(one(f"i{i}", "interactive")) for i in range(3 * MAX_OVERTAKES)]
        while t.queued != 1 + 3 * MAX_OVERTAKES:  # noqa: ASYNC110 (no event for this)
            await asyncio.sleep(0.001)
    await asyncio.wait_for(asyncio.gather(*tasks), 10)
    assert order.index("bulk") == MAX_OVERTAKES  # overtaken exactly the bound, then served


async def test_a_cancelled_remote_request_keeps_the_key_busy_until_its_estimated_end() -> None:
    t = remote(0.02)
    for _ in range(4):  # the key's requests take ~0.15 s
        async with t.slot():
            await asyncio.sleep(0.15)
    task = asyncio.create_task(_hold(t, 1.0))
    await asyncio.sleep(0.03)
    sent_at = time.monotonic() - 0.03
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    async with t.slot():
        started = time.monotonic()
    assert started - sent_at >= 0.15 - 0.01  # not at T after the cancellation: after the slowest round trip


async def _hold(t: KeyThrottle, seconds: float) -> None:
    async with t.slot():
        await asyncio.sleep(seconds)


# -- settings: one truth per key ----------------------------------------------------------------------


def test_a_later_session_with_other_settings_wins_and_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    hub = Hub()
    OpenDental(DEV_KEY, CUST_KEY, modes=("remote",), tier="full", hub=hub)
    key_id = OpenDental(DEV_KEY, CUST_KEY, modes=("remote",), tier="full", hub=hub).key_id
    throttle = hub.throttle.key("remote", key_id)  # type: ignore[attr-defined]
    assert throttle.interval == 1.0
    with caplog.at_level(logging.INFO, logger="odapi_async.throttle"):
        OpenDental(DEV_KEY, CUST_KEY, modes=("remote",), tier="read_all", hub=hub)
    assert throttle.interval == 5.0
    assert "changed tier 'full' -> 'read_all'" in caplog.text
    assert CUST_KEY not in caplog.text and DEV_KEY not in caplog.text


def test_a_plain_max_in_flight_never_raises_remote() -> None:
    hub = Hub()
    od = OpenDental(DEV_KEY, CUST_KEY, modes=("local", "service", "remote"), max_in_flight=16, hub=hub)
    caps = {mode: hub.throttle.max_in_flight(mode, od.key_id) for mode in ("local", "service", "remote")}
    assert caps == {"local": 16, "service": 16, "remote": 1}
    od2 = OpenDental(DEV_KEY, CUST_KEY, modes=("remote",), max_in_flight={"remote": 2}, hub=hub)
    assert hub.throttle.max_in_flight("remote", od2.key_id) == 2  # only when asked for by name


def test_key_settings_refuse_nonsense() -> None:
    for bad in ({"tier": "gold"}, {"intervals": {"full": -1}}, {"max_in_flight": 0}, {"safety_margin": -0.1}):
        with pytest.raises(ValueError):
            KeySettings.build("remote", **bad)  # type: ignore[arg-type]


# -- throttle answers: bounded holds, writes re-sent only on a real 429 ------------------------------------


def session(hub: Hub, **kw: object) -> OpenDental:
    kw.setdefault("modes", ("local",))
    return fast_retries(OpenDental(DEV_KEY, CUST_KEY, endpoints={"local": BASE}, hub=hub, **kw))  # type: ignore[arg-type]


async def test_an_absurd_retry_after_fails_at_once_and_does_not_freeze_the_key(mock_api) -> None:
    route = mock_api.get("/patients/1").mock(
        side_effect=[
            httpx.Response(429, headers={"Retry-After": "99999"}, text="Too many requests"),
            httpx.Response(200, json={"PatNum": 1}),
        ]
    )
    hub = Hub()
    od = session(hub, max_retry_wait=0.2, intervals={"full": 0.01})
    start = time.monotonic()
    with pytest.raises(Throttled) as err:
        await od.patients.get(1)
    assert err.value.retry_after == 99999 and time.monotonic() - start < 1
    assert route.call_count == 1
    got = await asyncio.wait_for(od.patients.get(1), 5)  # usable again once the cap has passed
    assert got.PatNum == 1 and time.monotonic() - start >= 0.2 - 0.01
    await od.aclose()


async def test_a_write_is_not_sent_again_on_a_400_that_mentions_a_rate_limit(mock_api) -> None:
    route = mock_api.post("/commlogs").mock(return_value=httpx.Response(400, text="Rate limit exceeded."))
    od = session(Hub())
    with pytest.raises(Throttled):
        await od.commlogs.create(PatNum=1, Note="called")
    assert route.call_count == 1
    await od.aclose()


async def test_a_write_refused_with_a_real_429_is_sent_again(mock_api) -> None:
    route = mock_api.post("/commlogs").mock(
        side_effect=[
            httpx.Response(429, text="Too many requests"),
            httpx.Response(201, json={"CommlogNum": 9}),
        ]
    )
    od = session(Hub(), intervals={"full": 0.01})
    made = await od.commlogs.create(PatNum=1, Note="called")
    assert made.CommlogNum == 9 and route.call_count == 2
    await od.aclose()


async def test_a_throttle_answer_on_local_backs_off_like_remote(mock_api) -> None:
    times: list[float] = []

    def answer(request: httpx.Request) -> httpx.Response:
        times.append(time.monotonic())
        if len(times) == 1:
            return httpx.Response(429, text="Too many requests")
        return httpx.Response(200, json={"PatNum": 1})

    mock_api.get("/patients/1").mock(side_effect=answer)
    od = session(Hub(), intervals={"full": 0.1})
    await od.patients.get(1)
    assert times[1] - times[0] >= 0.1 - 0.005  # one full-tier interval, not 2 ms
    await od.aclose()
