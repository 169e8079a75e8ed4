"""A Redis outage reaches every waiting request at once, whatever the tier; nothing is sent meanwhile."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import anyio
import pytest
from redis_support import NEEDS_REDIS, RedisServer, remote_stats

from odapi_async import OpenDental, RedisThrottle, ThrottleUnavailable
from odapi_async._settings import Tier

pytestmark = NEEDS_REDIS

BOUND = 1.0  # every waiter hears of the outage within this long after Redis died


@pytest.mark.parametrize(("tier", "key", "interval"), [("full", "k6", 0.3), ("read_all", "ro", 2.0)])
async def test_every_waiter_hears_of_the_outage_at_once(
    emu: Any, redis_server: RedisServer, tier: Tier, key: str, interval: float
) -> None:
    emu.reset_stats()
    throttle = RedisThrottle(redis_server.url, connect_timeout=0.5)
    ended: list[tuple[float, BaseException | None]] = []

    async def one(od: OpenDental) -> None:
        try:
            await od.request("GET", "/patients", params={"Limit": 1})
        except ThrottleUnavailable as exc:
            ended.append((time.monotonic(), exc))
        else:
            ended.append((time.monotonic(), None))

    intervals: dict[str, float] = {tier: interval}
    async with OpenDental(
        "dev",
        key,
        endpoints=emu.endpoints,
        modes=("remote",),
        tier=tier,
        intervals=intervals,
        throttle=throttle,
    ) as od:
        tasks = [asyncio.create_task(one(od)) for _ in range(8)]
        await asyncio.sleep(0.75)  # the moment of the crash, not a wait for something to happen
        redis_server.kill()
        killed = time.monotonic()
        with anyio.fail_after(10):
            await asyncio.gather(*tasks)
        # A request after the outage is refused at once too, without being sent.
        started = time.monotonic()
        with pytest.raises(ThrottleUnavailable):
            await od.request("GET", "/patients", params={"Limit": 1})
        assert time.monotonic() - started < BOUND
    served = [at for at, exc in ended if exc is None]
    failed = [at for at, exc in ended if exc is not None]
    assert failed and all(at < killed for at in served)
    assert max(failed) - killed < BOUND, [round(at - killed, 2) for at in failed]
    assert remote_stats(emu, key)["requests"] == len(served)  # nothing was sent after the crash
