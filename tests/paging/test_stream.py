"""Rows out of a stream: leaving it mid-page (break, aclose, cancellation) and the per-page key checks."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator

import httpx
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


def rows_of(paginator: Paginator[dict[str, int]]) -> AsyncGenerator[dict[str, int], None]:
    """The paginator's row stream, which is an async generator (its type says AsyncIterator): it can be closed."""
    rows = aiter(paginator)
    assert isinstance(rows, AsyncGenerator)
    return rows


def pager(fetch: Fetches, depth: int = 4) -> Paginator[dict[str, int]]:
    return Paginator(fetch, limit_for_page=lambda: 100, prefetch_depth=lambda: depth, primary_key="AptNum")


async def test_break_mid_page_then_aclose_cancels_the_read_ahead() -> None:
    fetch = Fetches(10_000, hang_from=300)
    got = []
    async with contextlib.aclosing(rows_of(pager(fetch))) as rows:
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
    async with contextlib.aclosing(rows_of(stream)) as rows:
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
        async with contextlib.aclosing(rows_of(pager(fetch))) as rows:
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


# ----------------------------------------------------------------------------------------------------
# Folded in from tests/unit/test_seen_keys.py: A stream's memory of the keys it yielded: constant while keys ascend, exact when they do not.


def page(start: int, count: int = 1000) -> list[int]:
    return list(range(start, start + count))


def test_ascending_keys_are_held_in_bounded_memory() -> None:
    seen = _SeenKeys()
    for start in range(0, 1_000_000, 1000):
        keys = page(start)
        assert seen.new_rows(keys, keys) == keys
    assert len(seen) <= _SeenKeys.KEEP + 1000  # not a million keys
    assert 5 in seen and 999_999 in seen and 1_000_000 not in seen
    overlap = page(999_999, 3)
    assert seen.connects(overlap) and seen.new_rows(overlap, overlap) == [1_000_000, 1_000_001]
    assert not seen.connects(page(2_000_000))


def test_keys_out_of_order_switch_to_an_exact_set_of_the_recent_ones() -> None:
    seen = _SeenKeys()
    seen.new_rows(page(100), page(100))
    shuffled = [2000, 150, 1500, 3]  # 150 was yielded; the others were not
    assert seen.new_rows(shuffled, shuffled) == [2000, 1500, 3]
    again = [3, 4]
    assert seen.new_rows(again, again) == [4]
    for start in range(10_000, 10_000 + 3 * _SeenKeys.KEEP, 1000):
        seen.new_rows(page(start), page(start))
    assert len(seen) == 1000 + 3 + 1 + 3 * _SeenKeys.KEEP  # exact: nothing forgotten any more


def test_a_page_wholly_below_the_last_key_is_judged_exactly() -> None:
    seen = _SeenKeys()
    seen.new_rows(page(0, 10), page(0, 10))
    seen.new_rows(page(20, 10), page(20, 10))
    below = page(5, 10)  # 5..14: 10..14 were never yielded (a list that is not in key order)
    assert seen.new_rows(below, below) == [10, 11, 12, 13, 14]


async def test_a_long_stream_with_deletions_behind_the_cursor_is_exact(od, mock_api, monkeypatch) -> None:
    monkeypatch.setattr(_SeenKeys, "KEEP", 2000)
    table = list(range(1, 30_001))
    served = 0

    def answer(request: httpx.Request) -> httpx.Response:
        nonlocal served, table
        offset, limit = int(request.url.params.get("Offset", 0)), int(request.url.params["Limit"])
        served += 1
        if served == 15:  # 3 000 rows vanish behind the cursor: the next page has lost its place
            table = table[:9000] + table[12_000:]
        rows = table[offset : offset + limit]
        return httpx.Response(200, json=[{"AptNum": k, "PatNum": 1} for k in rows])

    mock_api.get("/appointments").mock(side_effect=answer)
    got = [a.AptNum async for a in od.with_options(read_ahead=0).appointments.list()]
    assert len(got) == len(set(got)) and got == sorted(got)  # nothing twice, in order
    assert set(table) <= set(got)  # every row that existed throughout


@pytest.mark.parametrize("keys", [["b", "a"], [None, 1]])
def test_keys_that_do_not_ascend_or_compare_are_still_deduplicated(keys: list[object]) -> None:
    seen = _SeenKeys()
    assert seen.new_rows(keys, keys) == keys
    assert seen.new_rows(keys, keys) == []
