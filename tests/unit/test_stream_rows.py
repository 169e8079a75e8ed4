"""Rows out of a stream: leaving it mid-page (break, aclose, cancellation) and the per-page key checks."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from odapi_async import Paginator
from odapi_async._paging import stream as _stream
from odapi_async._paging.stream import _SeenKeys


def keyed(nums: range | list[int]) -> list[dict[str, int]]:
    return [{"AptNum": n} for n in nums]


class Fetches:
    """A list of ``total`` keyed rows served by a fetch function; offsets at or past ``hang_from`` stay in flight
    until cancelled. Records what was started, cancelled and finished."""

    def __init__(self, total: int, hang_from: int | None = None) -> None:
        self.total = total
        self.hang_from = hang_from
        self.started: list[int] = []
        self.cancelled: list[int] = []
        self.finished: list[int] = []
        self.hanging = asyncio.Event()  # set when a fetch is in flight and will stay so

    async def __call__(self, offset: int, limit: int) -> list[dict[str, int]]:
        self.started.append(offset)
        try:
            if self.hang_from is not None and offset >= self.hang_from:
                self.hanging.set()
                await asyncio.Event().wait()
            await asyncio.sleep(0)
            return keyed(range(offset, min(offset + limit, self.total)))
        except asyncio.CancelledError:
            self.cancelled.append(offset)
            raise
        finally:
            self.finished.append(offset)

    def in_flight(self) -> list[int]:
        left = list(self.started)
        for offset in self.finished:
            left.remove(offset)
        return left


def pager(fetch: Fetches, depth: int = 4) -> Paginator[dict[str, int]]:
    return Paginator(fetch, limit_for_page=lambda: 100, prefetch_depth=lambda: depth, primary_key="AptNum")


async def test_break_mid_page_then_aclose_cancels_the_read_ahead() -> None:
    fetch = Fetches(10_000, hang_from=300)
    got = []
    async with contextlib.aclosing(aiter(pager(fetch))) as rows:
        async for row in rows:
            got.append(row["AptNum"])
            if len(got) == 250:  # the middle of the third page
                await fetch.hanging.wait()  # a guess is in flight
                break
        assert fetch.in_flight()  # read ahead, not yet closed
    assert got == list(range(250))
    assert not fetch.in_flight()  # closing cancelled and awaited every fetch
    assert fetch.cancelled


async def test_rows_stop_exactly_where_the_loop_stops_and_a_new_iteration_starts_over() -> None:
    fetch = Fetches(450)
    stream = pager(fetch, depth=1)
    first = []
    async with contextlib.aclosing(aiter(stream)) as rows:
        async for row in rows:
            first.append(row["AptNum"])
            if len(first) == 150:
                break
    assert first == list(range(150))
    assert [r["AptNum"] async for r in stream] == list(range(450))  # a fresh pass, not a resumed one


async def test_cancelling_the_consumer_between_rows_leaves_no_fetch_behind() -> None:
    fetch = Fetches(10_000, hang_from=350)
    got = []
    between_rows = asyncio.Event()

    async def consume() -> None:
        async with contextlib.aclosing(aiter(pager(fetch))) as rows:
            async for row in rows:
                got.append(row["AptNum"])
                if len(got) == 250:  # the third page (from 198): guesses up to 495 are out by now
                    between_rows.set()
                    await asyncio.Event().wait()  # the loop body is busy when the cancellation lands

    task = asyncio.create_task(consume())
    await asyncio.wait_for(between_rows.wait(), 10)
    await asyncio.wait_for(fetch.hanging.wait(), 10)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert got == list(range(250))
    assert not fetch.in_flight() and fetch.cancelled


async def test_cancelling_the_consumer_while_it_waits_for_a_page_leaves_no_fetch_behind() -> None:
    fetch = Fetches(10_000, hang_from=250)
    got = []

    async def consume() -> None:
        async for row in pager(fetch, depth=1):  # no aclosing: the cancellation itself unwinds the stream
            got.append(row["AptNum"])

    task = asyncio.create_task(consume())
    await asyncio.wait_for(fetch.hanging.wait(), 10)  # pages from 0, 99 and 198 given; the one from 297 hangs
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert got == list(range(298))
    assert not fetch.in_flight() and fetch.cancelled == [297]


async def test_a_page_s_keys_are_checked_for_order_once(monkeypatch) -> None:
    calls = 0
    real = _stream._ascending

    def counting(keys: list[object]) -> bool:
        nonlocal calls
        calls += 1
        return real(keys)

    monkeypatch.setattr(_stream, "_ascending", counting)
    fetch = Fetches(1_050)
    got = [r["AptNum"] async for r in pager(fetch, depth=1)]
    assert got == list(range(1_050))
    pages = len(fetch.started)
    assert calls == pages  # connects() and new_rows() of one page share the check


def test_the_order_check_is_not_reused_for_another_list() -> None:
    seen = _SeenKeys()
    assert seen.new_rows([1, 2, 3], [1, 2, 3]) == [1, 2, 3]
    ascending = [3, 4, 5]
    assert seen.connects(ascending)
    shuffled = [5, 3, 4]  # what new_rows() gets is another list: judged on its own
    assert seen.new_rows(shuffled, shuffled) == [5, 4]
    assert 3 in seen and 5 in seen and 6 not in seen
