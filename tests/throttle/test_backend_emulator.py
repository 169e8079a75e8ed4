"""The process-wide throttle and the pools' life, against the emulator (in its own thread) over real sockets.

These are the sync-worker patterns: ``asyncio.run`` per job with a fresh session, threads with their own loops,
sessions closing while others work. The emulator counts violations at arrival.
"""

from __future__ import annotations

import asyncio
import gc
import os
import threading
import time
from typing import Any

import pytest
from emulators import emulator_fixture
from waiting import until

from odapi_async import Hub, OpenDental, Throttled
from odapi_async.emulator._server.stats import key_id

pytestmark = pytest.mark.integration

T = 0.05
KEYS = {"k1": "full", "k2": "full", "ro": "read_all", "loc": "full"}


emu = emulator_fixture(
    thread=True,
    seed=1,
    patients=30,
    developer_key="dev",
    customer_keys=KEYS,
    intervals={"full": T, "read_all": 0.25},
)


def remote_stats(emu: Any, customer_key: str, listener: str = "remote") -> dict[str, Any]:
    per = emu.stats()["keys"].get(key_id(customer_key), {"listeners": {}})
    return per["listeners"].get(listener, {"requests": 0, "violations": 0, "throttled": 0})


def session(emu: Any, customer_key: str, hub: Hub, **kw: Any) -> OpenDental:
    kw.setdefault("modes", ("remote",))
    kw.setdefault("intervals", {"full": T, "read_all": 0.25})
    return OpenDental("dev", customer_key, endpoints=emu.endpoints, hub=hub, **kw)


@pytest.mark.slow("many asyncio.run jobs, each spaced at the emulator (5 s under load)")
def test_sequential_asyncio_run_jobs_keep_the_spacing(emu: Any) -> None:
    emu.reset_stats()
    hub = Hub()
    runs, per_run = 40, 2
    durations: list[float] = []

    async def job() -> None:
        async with session(emu, "k1", hub, tier="auto") as od:
            for _ in range(per_run):
                await od.request("GET", "/patients", params={"Limit": 1})

    start = time.monotonic()
    for _ in range(runs):
        t0 = time.monotonic()
        asyncio.run(job())
        durations.append(time.monotonic() - t0)
    elapsed = time.monotonic() - start
    st = remote_stats(emu, "k1")
    assert st["violations"] == 0
    assert st["requests"] == runs * per_run  # no refusal, so no retry
    (tier,) = {st.tier for st in hub.throttle.stats().values()}
    assert tier == "auto"  # never demoted to read_all (stats say "read_all" once it has learned)
    # Each run waits one interval for its first request (the previous run's last was T ago at most) and one
    # between its own: about per_run intervals, not the 5x a demoted tier would cost.
    allowed = runs * per_run * (T + 0.03)
    assert elapsed <= allowed, (elapsed, allowed, max(durations))


def test_threads_with_their_own_loops_share_one_key(emu: Any) -> None:
    emu.reset_stats()
    hub = Hub()
    errors: list[BaseException] = []

    def worker() -> None:
        async def run() -> None:
            async with session(emu, "k2", hub, tier="full") as od:
                for _ in range(6):
                    await od.request("GET", "/patients", params={"Limit": 1})

        try:
            asyncio.run(run())
        except BaseException as exc:  # collected: a Throttled here is the failure under test
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(30)
    assert not errors
    st = remote_stats(emu, "k2")
    assert st["violations"] == 0 and st["requests"] == 18


def test_the_learned_tier_survives_a_new_loop(emu: Any) -> None:
    emu.reset_stats()
    hub = Hub()

    async def job(n: int) -> None:
        async with session(emu, "ro", hub, tier="auto") as od:
            for _ in range(n):
                await od.request("GET", "/patients", params={"Limit": 1})

    asyncio.run(job(3))  # the second request is refused once: "auto" learns read_all
    refused = remote_stats(emu, "ro")["violations"]
    assert refused >= 1
    asyncio.run(job(3))  # a new loop: read_all from the start, nothing refused
    assert remote_stats(emu, "ro")["violations"] == refused


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def _live_loops() -> int:
    gc.collect()
    return sum(isinstance(o, asyncio.AbstractEventLoop) for o in gc.get_objects())


@pytest.mark.slow("a hundred asyncio.run jobs (4 s under load)")
@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc")
@pytest.mark.parametrize("use_async_with", [True, False])
def test_sockets_and_loops_stay_flat_over_many_runs(emu: Any, use_async_with: bool) -> None:
    hub = Hub()
    local = {"local": emu.endpoints["local"]}

    async def job() -> None:
        od = OpenDental("dev", "loc", endpoints=local, modes=("local",), hub=hub)
        if use_async_with:
            async with od:
                await od.patients.get(1)
        else:
            await od.patients.get(1)  # never closed: the loop's end releases the pool

    asyncio.run(job())
    fds, loops = _open_fds(), _live_loops()
    for _ in range(100):
        asyncio.run(job())
    assert _open_fds() <= fds + 2
    assert _live_loops() <= loops + 1


def test_a_session_leaving_does_not_break_another_sessions_request(emu: Any) -> None:
    hub = Hub()
    emu.set_faults("local", latency=0.3)
    local = {"local": emu.endpoints["local"]}

    async def main() -> None:
        busy = OpenDental("dev", "k1", endpoints=local, modes=("local",), hub=hub)
        same_key = OpenDental("dev", "k1", endpoints=local, modes=("local",), hub=hub)
        other_key = OpenDental("dev", "k2", endpoints=local, modes=("local",), hub=hub)
        async with busy:
            before = remote_stats(emu, "k1", "local")["requests"]
            call = asyncio.create_task(busy.commlogs.create(PatNum=1, Note="kept"))
            write = asyncio.create_task(same_key.patients.get(1))
            await until(
                lambda: remote_stats(emu, "k1", "local")["requests"] == before + 2,
                what="both requests to reach the emulator (they run 0.3 s there)",
            )
            async with other_key:
                pass
            await other_key.aclose()
            await same_key.aclose()  # the pool also carries busy's POST: it stays open
            made = await call
            assert made.CommlogNum > 0 and (await write).PatNum == 1

    try:
        asyncio.run(main())
    finally:
        emu.clear_faults("local")


def test_cancelling_a_remote_request_mid_execution_keeps_the_key_busy(emu: Any) -> None:
    emu.reset_stats()
    emu.set_faults("remote", latency=0.3)
    hub = Hub()

    async def main() -> None:
        async with session(emu, "k1", hub, tier="full") as od:
            for _ in range(2):  # the key learns that its requests take ~0.3 s
                await od.request("GET", "/patients", params={"Limit": 1})
            task = asyncio.create_task(od.request("GET", "/patients", params={"Limit": 1}))
            await until(lambda: remote_stats(emu, "k1")["requests"] == 3, what="the third request to arrive")
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await od.request("GET", "/patients", params={"Limit": 1})  # must not arrive while it still runs

    try:
        asyncio.run(main())
    finally:
        emu.clear_faults("remote")
    st = remote_stats(emu, "k1")
    assert st["violations"] == 0


def test_a_throttled_key_reports_throttled_not_a_bare_error(emu: Any) -> None:
    # A read_all key driven as "full" with no retries: the refusal surfaces as Throttled, nothing else.
    hub = Hub()

    async def main() -> None:
        async with session(emu, "ro", hub, tier="full", max_retries=0) as od:
            await od.request("GET", "/patients", params={"Limit": 1})
            with pytest.raises(Throttled):
                await od.request("GET", "/patients", params={"Limit": 1})

    asyncio.run(main())
