"""A Remote request cancelled after it left: the next one is not refused, whatever the execution time.

The server counts a request's interval from its arrival and refuses anything that arrives while it still runs.
A cancelled request keeps running there, so the client must hold the key until the office has answered it —
not until a guess of when it will have.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import anyio
import pytest

from odapi_async import Hub, OpenDental
from odapi_async.emulator import Emulator

pytestmark = [pytest.mark.integration, pytest.mark.timing]  # gaps measured at the emulator

DEV = "dev"
KEY = "cust"


@pytest.fixture
def emu() -> Iterator[Any]:
    # The emulator in its own thread: its arrival stamps do not wait for the client's loop.
    with Emulator(
        seed=1,
        patients=5,
        developer_key=DEV,
        customer_keys={KEY: "full"},
        intervals={"full": 0.2},
        fractional_retry_after=True,
    ).in_thread() as e:
        yield e


def remote_stats(emu: Any) -> dict[str, Any]:
    per = emu.stats()["keys"].get(Emulator.key_id(KEY), {"listeners": {}})["listeners"]
    stats: dict[str, Any] = per.get("remote", {"requests": 0, "violations": 0, "arrivals": []})
    return stats


def session(emu: Any, interval: float) -> OpenDental:
    return OpenDental(
        DEV,
        KEY,
        endpoints=emu.endpoints,
        modes=("remote",),
        tier="full",
        intervals={"full": interval},
        max_retries=0,  # a refusal must surface as an error, not be retried away
        hub=Hub(),
    )


async def wait_for_arrivals(emu: Any, count: int, listener: str = "remote") -> None:
    """Until the emulator has seen ``count`` arrivals on ``listener`` (bounded)."""
    with anyio.fail_after(10):
        while emu.stats()["listeners"][listener]["requests"] < count:  # noqa: ASYNC110 (no event across threads)
            await asyncio.sleep(0.005)


@pytest.mark.parametrize("execution", [0.8, 1.4])
@pytest.mark.parametrize("interval", [0.2, 1.0])
async def test_cancelled_request_holds_the_key_until_answered(
    emu: Any, execution: float, interval: float
) -> None:
    emu.set_faults("remote", latency=execution)
    async with session(emu, interval) as od:
        first = asyncio.create_task(od.patients.get(1))
        await wait_for_arrivals(emu, 1)  # it has left and is running at the office
        cancelled_at = time.monotonic()
        first.cancel()
        with pytest.raises(asyncio.CancelledError):
            await first
        assert time.monotonic() - cancelled_at < 0.1  # the caller is free at once
        assert od._core.attempts.detached == 1  # its exchange goes on in the background
        emu.clear_faults("remote")
        second = await od.patients.get(2)
        assert od._core.attempts.detached == 0  # answered (then dropped) before the second could start
    assert second.PatNum == 2
    stats = remote_stats(emu)
    assert stats["violations"] == 0  # never refused
    gap = stats["arrivals"][1] - stats["arrivals"][0]
    assert gap >= execution  # the second arrived after the office had answered the first


async def test_cancel_while_waiting_takes_no_turn(emu: Any) -> None:
    """A request cancelled before it left costs nothing: the exchange is not started in the background."""
    emu.set_faults("remote", latency=0.3)
    async with session(emu, 0.2) as od:
        first = asyncio.create_task(od.patients.get(1))
        await wait_for_arrivals(emu, 1)
        queued = asyncio.create_task(od.patients.get(2))  # waits behind the running one
        await asyncio.sleep(0)
        queued.cancel()
        with pytest.raises(asyncio.CancelledError):
            await queued
        assert (await first).PatNum == 1
        emu.clear_faults("remote")
        assert (await od.patients.get(3)).PatNum == 3
    stats = remote_stats(emu)
    assert stats["requests"] == 2 and stats["violations"] == 0


async def test_local_cancel_closes_at_once(emu: Any) -> None:
    """Local and Service keep closing the connection at once: nothing runs on in the background."""
    emu.set_faults("local", latency=1.0)
    async with OpenDental(DEV, KEY, endpoints=emu.endpoints, modes=("local",), hub=Hub()) as od:
        task = asyncio.create_task(od.patients.get(1))
        await wait_for_arrivals(emu, 1, "local")
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert not od._core.attempts.detached  # nothing left running for a Local exchange
