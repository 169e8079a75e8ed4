"""One value per running loop, closed when the loop shuts down (``_util/perloop.py``), and its fast path."""

from __future__ import annotations

import asyncio
import threading

from odapi_async._util.perloop import PerLoop


class Value:
    def __init__(self) -> None:
        self.closed = False


async def close(value: Value) -> None:
    value.closed = True


def test_each_loop_has_its_own_value_closed_when_the_loop_ends() -> None:
    per: PerLoop[Value] = PerLoop(Value, close)

    async def use() -> Value:
        first = per.here()
        await asyncio.sleep(0)
        assert per.here() is first  # the same loop: the same value (the fast path)
        return first

    a = asyncio.run(use())
    b = asyncio.run(use())
    assert a is not b
    assert a.closed and b.closed
    assert per.items() == [] and per._last is None  # nothing of a closed loop is kept, not even cached


def test_loops_taking_turns_get_their_own_values() -> None:
    per: PerLoop[Value] = PerLoop(Value, close)
    one, two = asyncio.new_event_loop(), asyncio.new_event_loop()
    try:

        async def here() -> Value:
            return per.here()

        v1 = one.run_until_complete(here())
        v2 = two.run_until_complete(here())
        assert v1 is not v2
        assert one.run_until_complete(here()) is v1  # the cached value was the other loop's: looked up again
        assert two.run_until_complete(here()) is v2
    finally:
        for loop in (one, two):
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()
    assert v1.closed and v2.closed


async def test_close_here_makes_the_next_use_make_a_new_value() -> None:
    per: PerLoop[Value] = PerLoop(Value, close)
    first = per.here()
    await per.close_here()
    assert first.closed
    second = per.here()
    assert second is not first and not second.closed
    await per.close_here()


def test_threads_with_their_own_loops_never_share_a_value() -> None:
    per: PerLoop[Value] = PerLoop(Value, close)
    seen: dict[int, list[Value]] = {}
    start = threading.Barrier(4)

    def worker(n: int) -> None:
        async def run() -> None:
            start.wait(5)
            seen[n] = []
            for _ in range(200):
                seen[n].append(per.here())
                await asyncio.sleep(0)

        asyncio.run(run())

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert all(len(set(map(id, values))) == 1 for values in seen.values())  # one value per thread's loop
    assert len({id(values[0]) for values in seen.values()}) == 4  # and four different ones
    assert all(values[0].closed for values in seen.values())
