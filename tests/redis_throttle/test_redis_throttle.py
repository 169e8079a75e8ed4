"""RedisThrottle against a real redis-server and the emulator, within one process.

Several ``RedisThrottle`` objects stand for several processes here (each has its own local throttle); the
multi-process tests are in ``test_processes.py``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import pytest
import redis.asyncio as redis_asyncio
from redis_support import INTERVALS, NEEDS_REDIS, RedisServer, T, remote_stats
from waiting import until

from odapi_async import KeySettings, OpenDental, RedisThrottle, ThrottleUnavailable
from odapi_async._settings import Priority

pytestmark = NEEDS_REDIS


def session(emu: Any, key: str, throttle: RedisThrottle, **kw: Any) -> OpenDental:
    kw.setdefault("tier", "full")
    return OpenDental(
        "dev", key, endpoints=emu.endpoints, modes=("remote",), intervals=INTERVALS, throttle=throttle, **kw
    )


async def get(od: OpenDental) -> None:
    await od.request("GET", "/patients", params={"Limit": 1})


async def test_two_throttles_on_one_key_are_spaced_at_the_emulator(
    emu: Any, redis_server: RedisServer
) -> None:
    emu.reset_stats()
    a, b = RedisThrottle(redis_server.url), RedisThrottle(redis_server.url)
    async with session(emu, "k1", a) as od_a, session(emu, "k1", b) as od_b:
        started = time.monotonic()
        await asyncio.gather(*[get(od) for od in (od_a, od_b) for _ in range(6)])
        elapsed = time.monotonic() - started
    st = remote_stats(emu, "k1")
    assert st["violations"] == 0 and st["requests"] == 12
    assert elapsed >= 11 * T
    for throttle in (a, b):
        (counters,) = throttle.redis_stats().values()
        assert counters.requests == 6
        # acquire + release, and an extra acquire for each "busy" answer
        assert counters.calls == 2 * counters.requests + counters.busy + counters.noscript


async def test_two_keys_stay_independent(emu: Any, redis_server: RedisServer) -> None:
    emu.reset_stats()
    throttle = RedisThrottle(redis_server.url)
    async with session(emu, "k8", throttle) as one, session(emu, "k2", throttle) as two:
        await asyncio.gather(*[get(od) for od in (one, two) for _ in range(8)])
    first, second = remote_stats(emu, "k8"), remote_stats(emu, "k2")
    assert first["violations"] == second["violations"] == 0
    # Judged at the emulator, not by the wall clock (a loaded machine stretches both): one shared queue would
    # space every arrival T apart, whatever its key; independent keys arrive side by side.
    arrivals = sorted([*first["arrivals"], *second["arrivals"]])
    assert len(arrivals) == 16
    assert min(b - a for a, b in zip(arrivals, arrivals[1:])) < T / 2


async def test_noscript_after_script_flush_loads_the_script_again(
    emu: Any, redis_server: RedisServer
) -> None:
    emu.reset_stats()
    throttle = RedisThrottle(redis_server.url)
    admin = redis_asyncio.Redis.from_url(redis_server.url)
    try:
        async with session(emu, "k3", throttle) as od:
            await get(od)  # a fresh server: both scripts are loaded on first use
            (counters,) = throttle.redis_stats().values()
            before = (counters.requests, counters.noscript, counters.calls)
            await admin.script_flush()
            await get(od)
    finally:
        await admin.aclose()
    # One request: acquire, release and the pickup check sent with it each answered NOSCRIPT once, then ran
    # by EVAL (the release and its pickup check are one round trip).
    assert (counters.requests, counters.noscript, counters.calls) == (
        before[0] + 1,
        before[1] + 3,
        before[2] + 5,
    )
    assert remote_stats(emu, "k3")["violations"] == 0


async def test_the_learned_auto_tier_is_shared(emu: Any, redis_server: RedisServer) -> None:
    emu.reset_stats()
    first, second = RedisThrottle(redis_server.url), RedisThrottle(redis_server.url)
    async with session(emu, "ro", first, tier="auto") as od:
        for _ in range(3):
            await get(od)  # the second is refused once: "auto" learns read_all, for everyone
    refused = remote_stats(emu, "ro")["violations"]
    assert refused == 1
    async with session(emu, "ro", second, tier="auto") as od:
        for _ in range(3):
            await get(od)
    assert remote_stats(emu, "ro")["violations"] == refused  # the second "process" never learned it itself
    (st,) = second.stats().values()
    assert st.tier == "read_all" and st.interval == INTERVALS["read_all"]


async def test_redis_down_fails_closed_before_sending(emu: Any, redis_server: RedisServer) -> None:
    emu.reset_stats()
    throttle = RedisThrottle(redis_server.url, connect_timeout=0.5)
    async with session(emu, "k4", throttle) as od:
        await get(od)
        redis_server.stop()
        with pytest.raises(ThrottleUnavailable, match=r"redis://127\.0\.0\.1:\d+/0 did not answer") as info:
            await get(od)
        assert "fallback='local'" in str(info.value)
    assert remote_stats(emu, "k4")["requests"] == 1  # the refused turn sent nothing


async def test_redis_down_falls_back_to_the_local_throttle_with_one_warning(
    emu: Any, redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    emu.reset_stats()
    throttle = RedisThrottle(redis_server.url, fallback="local", connect_timeout=0.5, retry_down=0.05)
    redis_server.stop()
    with caplog.at_level(logging.WARNING, logger="odapi_async.throttle"):
        async with session(emu, "k5", throttle) as od:
            for _ in range(4):
                await get(od)  # retry_down is short: Redis is asked (and fails) again, but warned once
    st = remote_stats(emu, "k5")
    assert st["requests"] == 4 and st["violations"] == 0  # the local throttle still spaces this process
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "unreachable" in warnings[0].getMessage()
    (counters,) = throttle.redis_stats().values()
    assert counters.local_only == 4 and counters.requests == 0

    redis_server.start()  # back: once retry_down has passed, the next request asks Redis again
    with caplog.at_level(logging.INFO, logger="odapi_async.throttle"):
        async with session(emu, "k5", throttle) as od:
            deadline = time.monotonic() + 5
            while counters.requests == 0:  # bounded: each request after retry_down tries Redis
                assert time.monotonic() < deadline
                await get(od)
    assert any("answers again" in r.getMessage() for r in caplog.records if r.levelno == logging.INFO)
    assert remote_stats(emu, "k5")["violations"] == 0


async def test_a_redis_restart_gives_clear_errors_then_recovers(emu: Any, redis_server: RedisServer) -> None:
    emu.reset_stats()
    throttle = RedisThrottle(redis_server.url, connect_timeout=0.5)
    async with session(emu, "k6", throttle) as od:
        await get(od)
        redis_server.stop()
        for _ in range(2):
            with pytest.raises(ThrottleUnavailable):
                await get(od)
        redis_server.start()  # same port, empty: no scripts, no state
        for _ in range(3):
            await get(od)  # the same session and throttle: reconnects, loads the scripts again
    st = remote_stats(emu, "k6")
    assert st["requests"] == 4 and st["violations"] == 0
    (counters,) = throttle.redis_stats().values()
    # acquire, release and its pickup check, on the first server and on the restarted one
    assert counters.noscript == 6


async def test_a_lease_frees_itself_after_the_ttl(redis_server: RedisServer) -> None:
    # A holder that never releases (its process died: here its lease is simply never given back).
    holder, other = RedisThrottle(redis_server.url, lease_ttl=0.6), RedisThrottle(redis_server.url)
    for throttle in (holder, other):  # an interval well below the TTL: the lease is what holds the key
        throttle.configure("remote", "kx", KeySettings.build("remote", tier="full", intervals={"full": 0.1}))
    slot = holder.slot("remote", "kx")
    await slot.__aenter__()
    granted = time.monotonic()
    slot._member = ""  # type: ignore[attr-defined]  # forget the lease: the exit below releases only the local turn
    await slot.__aexit__(None, None, None)
    async with other.slot("remote", "kx"):
        waited = time.monotonic() - granted
    assert 0.6 - 0.05 <= waited <= 0.6 + 0.3, waited


async def test_a_request_cancelled_after_it_left_keeps_the_key_busy_for_everyone(
    emu: Any, redis_server: RedisServer
) -> None:
    emu.reset_stats()
    emu.set_faults("remote", latency=0.3)
    first, second = RedisThrottle(redis_server.url), RedisThrottle(redis_server.url)
    try:
        async with session(emu, "k9", first) as od_a, session(emu, "k9", second) as od_b:
            for _ in range(2):  # the first "process" learns that its requests take ~0.3 s
                await get(od_a)
            task = asyncio.create_task(get(od_a))
            await until(lambda: remote_stats(emu, "k9")["requests"] == 3, what="it to run at the emulator")
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await get(od_b)  # another process: must not arrive while the cancelled one still runs
    finally:
        emu.clear_faults("remote")
    st = remote_stats(emu, "k9")
    assert st["violations"] == 0 and st["requests"] == 4


async def test_a_turn_cancelled_before_it_was_sent_gives_its_lease_back(redis_server: RedisServer) -> None:
    settings = KeySettings.build("remote", tier="full", intervals={"full": 0.1})
    a, b, c = (RedisThrottle(redis_server.url, lease_ttl=5.0) for _ in range(3))
    for throttle in (a, b, c):
        throttle.configure("remote", "kc", settings)

    async def take(throttle: RedisThrottle, entered: asyncio.Event) -> None:
        async with throttle.slot("remote", "kc"):
            entered.set()

    async with a.slot("remote", "kc"):
        pass  # the next start is reserved ~0.1 s from now: b is granted it, and sleeps until then
    b_entered = asyncio.Event()
    waiting = asyncio.create_task(take(b, b_entered))
    await until(lambda: sum(c.requests for c in b.redis_stats().values()) == 1, what="b's acquire to answer")
    (counters,) = b.redis_stats().values()
    assert counters.requests == 1 and not b_entered.is_set()  # holds a reserved lease, not yet sent
    waiting.cancel()
    await asyncio.gather(waiting, return_exceptions=True)
    started = time.monotonic()
    c_entered = asyncio.Event()
    await asyncio.wait_for(take(c, c_entered), 2)  # not the 5 s TTL: b's lease was given back
    assert c_entered.is_set() and time.monotonic() - started < 1.0
    assert b.local.stats()[("remote", "kc")].in_flight == 0  # the local turn was given back too


async def test_redis_keys_are_namespaced_and_never_hold_the_customer_key(
    emu: Any, redis_server: RedisServer
) -> None:
    throttle = RedisThrottle(redis_server.url.replace("redis://", "redis://:secret-pw@"), namespace="fleet")
    assert "secret-pw" not in repr(throttle) and "secret-pw" not in throttle.where
    throttle = RedisThrottle(redis_server.url, namespace="fleet")
    admin = redis_asyncio.Redis.from_url(redis_server.url, decode_responses=True)
    try:
        async with session(emu, "k2", throttle) as od:
            await get(od)
            names = sorted(await admin.keys("*"))
    finally:
        await admin.aclose()
    base = f"fleet:throttle:{{{od.key_id}}}:remote"
    assert names == [base, f"{base}:rtts"]  # the lease set and the line are empty, so Redis dropped them
    assert not any("k2" in str(n).replace(od.key_id, "") for n in names)


def _settings(**kw: Any) -> KeySettings:
    kw.setdefault("tier", "full")
    kw.setdefault("intervals", {"full": 0.1})
    return KeySettings.build(kw.pop("mode", "remote"), **kw)


async def test_a_holder_past_half_its_ttl_renews_its_lease(redis_server: RedisServer) -> None:
    holder, other = RedisThrottle(redis_server.url, lease_ttl=0.4), RedisThrottle(redis_server.url)
    for throttle in (holder, other):
        throttle.configure("remote", "kr", _settings())
    released = asyncio.Event()
    entered = asyncio.Event()

    async def hold() -> None:
        async with holder.slot("remote", "kr"):
            entered.set()
            await asyncio.sleep(1.0)  # 2.5 TTLs: renewed at 0.2, 0.4, 0.6, 0.8 s
            released.set()  # the release starts: it hands the lease to the other

    task = asyncio.create_task(hold())
    await entered.wait()
    async with other.slot("remote", "kr"):
        assert released.is_set()  # never granted while the long request ran
    await task
    (counters,) = holder.redis_stats().values()
    assert counters.calls >= 2 + 4  # acquire, release and the renewals (first calls may add NOSCRIPT loads)


async def test_the_in_flight_cap_holds_across_throttles(redis_server: RedisServer) -> None:
    throttles = [RedisThrottle(redis_server.url) for _ in range(3)]
    for throttle in throttles:
        throttle.configure("local", "kl", _settings(mode="local", max_in_flight=2))
    running, most = 0, 0
    gate = asyncio.Event()

    async def one(throttle: RedisThrottle) -> None:
        nonlocal running, most
        async with throttle.slot("local", "kl"):
            running += 1
            most = max(most, running)
            if running == 2:
                gate.set()
            await asyncio.wait_for(gate.wait(), 5)  # the first two meet here; a third would too if allowed
            await asyncio.sleep(0.05)
            running -= 1

    await asyncio.gather(*[one(t) for t in throttles])
    assert most == 2


async def test_a_waiter_that_died_in_line_frees_the_key_after_its_lease_ttl(
    redis_server: RedisServer,
) -> None:
    from odapi_async._throttle.redis_scripts import ACQUIRE, RELEASE, state_keys

    throttle = RedisThrottle(redis_server.url)
    throttle.configure("remote", "kq", _settings())
    admin = redis_asyncio.Redis.from_url(redis_server.url, decode_responses=True)
    keys = state_keys("odapi", "remote", "kq")
    # A caller's terms (ms): intervals 100/100, a fixed 3 ms margin, a 0.6 s lease, 1 in flight.
    terms = "100 100 3 0 0 3 600 1"

    async def acquire(lease_id: str) -> list[Any]:
        return list(await admin.eval(ACQUIRE.body, len(keys), *keys, lease_id, terms, 60000, 60000, "b", 0))

    try:
        assert (await acquire("holder"))[0] == 1
        assert (await acquire("dead-waiter"))[0] == 0  # joins the line, then never reads its decision
        grant = await admin.lpop(f"{keys[0]}:grant:holder")
        assert isinstance(grant, str)  # decode_responses
        member = grant.split()[1]
        # The holder releases: its lease is handed to the dead waiter, which never sends nor releases.
        await admin.eval(
            RELEASE.body, len(keys), *keys, member, 0, 1, 5, 0, -1, 1e9, 100, 1, 0, 100, 100, 100, 60000
        )
        assert await admin.llen(f"{keys[0]}:grant:dead-waiter") == 1
        started = time.monotonic()
        async with throttle.slot("remote", "kq"):
            waited = time.monotonic() - started
    finally:
        await admin.aclose()
    # Blocked by the dead waiter's lease until it expires (0.6 s after its reserved start, ~0.1 s from now).
    assert 0.6 <= waited <= 1.2, waited


async def test_an_acquire_costs_one_round_trip_even_when_it_waits(redis_server: RedisServer) -> None:
    a, b = RedisThrottle(redis_server.url), RedisThrottle(redis_server.url)
    for throttle in (a, b):
        throttle.configure("remote", "kw", _settings(intervals={"full": 0.2}))
    entered = asyncio.Event()
    released = 0.0

    async def hold() -> None:
        nonlocal released
        async with a.slot("remote", "kw"):
            entered.set()
            await asyncio.sleep(
                0.3
            )  # b asks meanwhile: it waits in line, then the release hands it the lease
            released = time.monotonic()  # the release starts now

    task = asyncio.create_task(hold())
    await entered.wait()
    async with b.slot("remote", "kw"):
        handed = time.monotonic()
    await task
    assert handed >= released > 0  # the cap held: b's turn came only after a's release
    (counters,) = b.redis_stats().values()
    assert (counters.requests, counters.busy) == (1, 0)
    assert counters.calls - counters.noscript == 2  # one acquire (its BLPOP waited), one release


async def _holding(throttle: RedisThrottle, key: str, release: asyncio.Event) -> asyncio.Task[None]:
    """A task that takes a turn on ``key`` and keeps it until ``release`` is set."""
    entered = asyncio.Event()

    async def hold() -> None:
        async with throttle.slot("remote", key):
            entered.set()
            await asyncio.wait_for(release.wait(), 10)

    task = asyncio.create_task(hold())
    await asyncio.wait_for(entered.wait(), 5)
    return task


async def test_a_waiter_cancelled_in_line_leaves_it_and_the_next_one_is_served(
    redis_server: RedisServer,
) -> None:
    a, b, c = (RedisThrottle(redis_server.url) for _ in range(3))
    for throttle in (a, b, c):
        throttle.configure("remote", "kl2", _settings(intervals={"full": 0.05}))
    release = asyncio.Event()
    holder = await _holding(a, "kl2", release)
    waiting_b = asyncio.create_task(_turn(b, "kl2"))
    await _until_in_line(redis_server, "kl2", 1)
    waiting_c = asyncio.create_task(_turn(c, "kl2"))
    await _until_in_line(redis_server, "kl2", 2)
    waiting_b.cancel()  # blocked in its BLPOP: LEAVE takes it out of the line and ends the BLPOP
    await asyncio.gather(waiting_b, return_exceptions=True)
    await _until_in_line(redis_server, "kl2", 1)
    release.set()
    await holder
    await asyncio.wait_for(waiting_c, 2)  # handed over at the release, not after a TTL
    (counters,) = b.redis_stats().values()
    assert counters.requests == 0  # b never held a lease
    assert b.local.stats()[("remote", "kl2")].in_flight == 0


async def test_a_waiter_past_acquire_timeout_raises_and_leaves_the_line(redis_server: RedisServer) -> None:
    a = RedisThrottle(redis_server.url)
    b = RedisThrottle(redis_server.url, acquire_timeout=0.3)
    for throttle in (a, b):
        throttle.configure("remote", "kt", _settings(intervals={"full": 0.05}))
    release = asyncio.Event()
    holder = await _holding(a, "kt", release)
    started = time.monotonic()
    with pytest.raises(ThrottleUnavailable, match="within 0.3 s"):
        await _turn(b, "kt")
    assert 0.3 <= time.monotonic() - started < 1.0
    await _until_in_line(redis_server, "kt", 0)
    release.set()
    await holder


async def test_redis_stopped_under_a_waiting_caller_raises_at_once(redis_server: RedisServer) -> None:
    a, b = RedisThrottle(redis_server.url), RedisThrottle(redis_server.url)
    for throttle in (a, b):
        throttle.configure("remote", "ks", _settings(intervals={"full": 0.05}))
    release = asyncio.Event()
    holder = await _holding(a, "ks", release)
    waiting = asyncio.create_task(_turn(b, "ks"))
    await _until_in_line(redis_server, "ks", 1)
    redis_server.stop()
    started = time.monotonic()
    with pytest.raises(ThrottleUnavailable, match="did not answer"):
        await asyncio.wait_for(waiting, 5)
    assert time.monotonic() - started < 2.0  # the BLPOP's connection closed: not its 30 s wait
    release.set()
    await holder  # its release fails (Redis is down): logged, the answer is kept


async def _turn(throttle: RedisThrottle, key: str) -> None:
    async with throttle.slot("remote", key):
        pass


async def _until_in_line(redis_server: RedisServer, key: str, n: int) -> None:
    """Wait (bounded) until ``n`` callers wait in ``key``'s line in Redis (both lanes)."""
    from odapi_async._throttle.redis_scripts import state_keys

    admin = redis_asyncio.Redis.from_url(redis_server.url)
    keys = state_keys("odapi", "remote", key)
    lines = [k for k in keys if k.endswith(":line") or k.endswith(":line:interactive")]
    try:
        deadline = time.monotonic() + 5
        while sum([await admin.zcard(k) for k in lines]) != n:
            assert time.monotonic() < deadline, f"the line never held {n}"
            await asyncio.sleep(0.01)
    finally:
        await admin.aclose()


async def test_interactive_turns_go_first_across_processes_and_bulk_waits_at_most_four(
    redis_server: RedisServer,
) -> None:
    holder = RedisThrottle(redis_server.url)
    bulk = RedisThrottle(redis_server.url)
    web = [RedisThrottle(redis_server.url) for _ in range(5)]  # five "processes" with interactive requests
    for throttle in (holder, bulk, *web):
        throttle.configure("remote", "kp", _settings(intervals={"full": 0.02}))
    order: list[str] = []

    async def turn(throttle: RedisThrottle, name: str, priority: Priority) -> None:
        async with throttle.slot("remote", "kp", priority):
            order.append(name)

    release = asyncio.Event()
    held = await _holding(holder, "kp", release)
    tasks = [asyncio.create_task(turn(bulk, "bulk", "bulk"))]
    await _until_in_line(redis_server, "kp", 1)  # the bulk request waits first
    for i, throttle in enumerate(web):
        tasks.append(asyncio.create_task(turn(throttle, f"web{i}", "interactive")))
        await _until_in_line(redis_server, "kp", 2 + i)
    release.set()
    await held
    await asyncio.wait_for(asyncio.gather(*tasks), 5)
    assert order == ["web0", "web1", "web2", "web3", "bulk", "web4"]
