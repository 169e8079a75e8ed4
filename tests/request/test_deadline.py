"""The attempt's total deadline, in both of its forms (asyncio's on 3.11+, anyio's cancel scope on 3.10)."""

from __future__ import annotations

import asyncio
import math
import sys
import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

import pytest

from odapi_async._request.deadline import AnyioDeadline, deadline

Make = Callable[[float], AbstractAsyncContextManager[object]]
FORMS: list[Make] = [AnyioDeadline]
if sys.version_info >= (3, 11):
    FORMS.append(deadline)

forms = pytest.mark.parametrize("make", FORMS, ids=lambda f: getattr(f, "__name__", str(f)))


async def test_this_python_uses_the_lean_form_where_it_can() -> None:
    made = deadline(1.0)
    assert isinstance(made, AnyioDeadline) is (sys.version_info < (3, 11))


@forms
async def test_passing_the_deadline_raises_timeout_error(make: Make) -> None:
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        async with make(0.05):
            await asyncio.Event().wait()  # never set: only the deadline ends this
    assert 0.04 <= time.monotonic() - started < 2.0


@forms
async def test_work_within_the_deadline_is_untouched(make: Make) -> None:
    async with make(5.0):
        await asyncio.sleep(0)
        result = 42
    assert result == 42
    await asyncio.sleep(0.01)  # no cancellation is left pending for the task afterwards


@forms
async def test_an_infinite_deadline_never_fires(make: Make) -> None:
    async with make(math.inf):
        await asyncio.sleep(0.01)


@forms
async def test_after_a_deadline_the_task_goes_on_uncancelled(make: Make) -> None:
    with pytest.raises(TimeoutError):
        async with make(0.01):
            await asyncio.Event().wait()
    await asyncio.sleep(0.02)  # would raise CancelledError if the deadline's cancellation leaked out
    task = asyncio.current_task()
    assert task is not None and not task.cancelling() if sys.version_info >= (3, 11) else True  # type: ignore[attr-defined,unused-ignore]  # 3.11+ only (the test skips below 3.11)


@forms
async def test_the_callers_cancellation_stays_a_cancellation(make: Make) -> None:
    entered = asyncio.Event()

    async def waits() -> None:
        async with make(30.0):
            entered.set()
            await asyncio.Event().wait()

    task = asyncio.ensure_future(waits())
    await asyncio.wait_for(entered.wait(), 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task  # not a TimeoutError: the deadline did not pass


@forms
async def test_an_error_inside_passes_through(make: Make) -> None:
    with pytest.raises(ValueError, match="inside"):
        async with make(5.0):
            raise ValueError("inside")
