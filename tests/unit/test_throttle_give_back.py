"""``ThrottleSlot.give_back()``: a turn whose request never left (a shared throttle behind said no)."""

from __future__ import annotations

import asyncio

from odapi_async._throttle.key import KeyThrottle


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
