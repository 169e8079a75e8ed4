"""Streaming pagination: the stop rule's edge cases, offsets, limits, prefetch order and cancellation."""

from __future__ import annotations

import asyncio
import contextlib

import httpx
import pytest

from odapi_async import Hub, OpenDental, Paginator
from odapi_async._paging.stream import is_last_page
from support import BASE, CUST_KEY, DEV_KEY


def rows(start: int, count: int) -> list[dict]:
    return [{"AptNum": start + i, "PatNum": 1} for i in range(count)]


class PagedServer:
    """Answers GET /appointments from ``total`` rows, as a server does: the rows at [Offset, Offset + Limit),
    capped at ``cap(offset)`` rows a page (default: no cap). Records the Offset/Limit asked."""

    def __init__(self, total: int, cap=None) -> None:
        self.total = total
        self.cap = cap or (lambda offset: 10**9)
        self.asked: list[tuple[int, int]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        offset = int(request.url.params.get("Offset", 0))
        limit = int(request.url.params["Limit"])
        self.asked.append((offset, limit))
        size = max(0, min(limit, self.cap(offset), self.total - offset))
        return httpx.Response(200, json=rows(offset, size))


def test_stop_rule() -> None:
    assert is_last_page(0, 100)
    assert is_last_page(37, 1000)
    assert is_last_page(15, 20)
    assert is_last_page(450, 1000)  # 450 cannot be a cap: the end, no request for an empty page
    assert not is_last_page(100, 1000)  # a server capping at 100 must not end the stream
    assert not is_last_page(1000, 1000)
    assert not is_last_page(10_000, 10_000)
    assert not is_last_page(20, 20)
    assert not is_last_page(500, 1000)  # short of the Limit but perhaps an undocumented cap: ask again


async def test_empty_first_page(od, mock_api) -> None:
    server = PagedServer(0)
    mock_api.get("/appointments").mock(side_effect=server)
    assert await od.appointments.list().collect() == []
    assert server.asked == [(0, 1000)]


async def test_exactly_cap_pages_never_end_the_stream(od, mock_api) -> None:
    server = PagedServer(2000)
    mock_api.get("/appointments").mock(side_effect=server)
    got = [a.AptNum async for a in od.appointments.list()]
    assert got == list(range(2000))
    # Each page overlaps the one before by a row; the 2-row page at 1998 (short, not a possible cap) ended it.
    assert sorted(o for o, _ in server.asked)[:3] == [0, 999, 1998]


async def test_asked_1000_got_100_twice_then_37(od, mock_api) -> None:
    server = PagedServer(237, cap=lambda offset: 100)
    mock_api.get("/appointments").mock(side_effect=server)
    got = [a.AptNum async for a in od.appointments.list(Limit=1000)]
    assert got == list(range(237))  # nothing lost, nothing doubled
    assert (0, 1000) in server.asked and (99, 1000) in server.asked and (198, 1000) in server.asked


async def test_remote_mode_uses_cap_100_and_no_prefetch() -> None:
    import respx

    od = OpenDental(
        DEV_KEY,
        CUST_KEY,
        endpoints={"remote": BASE},
        modes=("remote",),
        hub=Hub(),
        intervals={"full": 0.001, "read_all": 0.001},
        safety_margin=0.0,
    )
    server = PagedServer(203, cap=lambda offset: 100)
    with respx.mock(using="httpcore2", base_url=BASE) as router:
        router.get("/appointments").mock(side_effect=server)
        async with od:
            got = await od.appointments.list().collect()
    assert [a.AptNum for a in got] == list(range(203))
    assert server.asked == [(0, 100), (99, 100), (198, 100)]  # one row of overlap a page; no guess


async def test_user_limit_and_offset(od, mock_api) -> None:
    server = PagedServer(200)
    mock_api.get("/appointments").mock(side_effect=server)
    page = await od.appointments.list(Offset=40, Limit=20).first_page()
    assert [a.AptNum for a in page] == list(range(40, 60))
    got = await od.appointments.list(Offset=40, Limit=20).collect()
    assert [a.AptNum for a in got] == list(range(40, 200))


async def test_await_paginator_collects(od, mock_api) -> None:
    server = PagedServer(1003)
    mock_api.get("/appointments").mock(side_effect=server)
    paginator = od.appointments.list()
    assert isinstance(paginator, Paginator)
    assert not server.asked  # lazy: nothing fetched until iterated
    assert len(await paginator) == 1003


async def test_pages_in_order_with_prefetch(od, mock_api) -> None:
    server = PagedServer(7001)
    mock_api.get("/appointments").mock(side_effect=server)
    pages = [len(p) async for p in od.appointments.list().pages()]
    assert pages == [1000] + [999] * 6 + [7]  # new rows only: the overlapping row is not yielded twice
    offsets = [o for o, _ in server.asked]
    assert len(set(offsets)) == len(offsets)  # each page fetched once
    assert len(offsets) <= 8 + 3  # the pages, plus at most (prefetch depth - 1) guesses past the end


async def test_page_size_change_mid_stream_refetches_at_the_right_offset(od, mock_api) -> None:
    # The first page is full at 1000, then the server starts capping at 100 (e.g. a failover):
    # prefetched guesses at 2000, 3000... are wrong and must be discarded, not used.
    server = PagedServer(1312, cap=lambda offset: 1000 if offset == 0 else 100)
    mock_api.get("/appointments").mock(side_effect=server)
    got = [a.AptNum async for a in od.appointments.list()]
    assert got == list(range(1312))


async def test_breaking_early_cancels_prefetch(od, mock_api) -> None:
    server = PagedServer(50_000)
    never = asyncio.Event()

    async def slow_after_two_pages(request):
        if int(request.url.params.get("Offset", 0)) >= 1500:
            await never.wait()  # stays in flight until cancelled
        return server(request)

    mock_api.get("/appointments").mock(side_effect=slow_after_two_pages)

    def fetch_tasks() -> list[asyncio.Task]:
        return [
            t
            for t in asyncio.all_tasks()
            if getattr(t.get_coro(), "__qualname__", "").endswith(
                ("_list.<locals>.fetch", "counting.<locals>.counted")
            )
            and not t.done()
        ]

    pages = od.appointments.list().pages()
    async with contextlib.aclosing(pages):
        seen = 0
        async for _ in pages:
            seen += 1
            if seen == 2:
                assert fetch_tasks()  # prefetching is under way...
                break
    assert not fetch_tasks()  # ...and nothing outlives the stream
    assert len(server.asked) <= 5  # the first page plus at most the prefetch window


async def test_wrong_guesses_cancelled_mid_stream_do_not_outlive_it() -> None:
    # Page size drops from 1000 to 100 after two full pages (a failover): the prefetched guesses at 3000, 4000,
    # 5000 are cancelled; their cleanup (closing a connection, releasing a slot) must end before the stream does.
    started: set[int] = set()
    finished: set[int] = set()
    guessing = asyncio.Event()  # the guesses past 2000 are in flight

    async def fetch(offset: int, limit: int) -> list[int]:
        started.add(offset)
        if {3000, 4000, 5000} <= started:
            guessing.set()
        try:
            if offset in (0, 1000):
                return list(range(offset, offset + 1000))
            if offset == 2000:
                await asyncio.wait_for(guessing.wait(), 5)  # the short page comes back once the guesses run
                return list(range(2000, 2100))
            if offset == 2100:
                return list(range(2100, 2107))
            await asyncio.Event().wait()  # a guess: hangs until cancelled
            return []
        finally:
            if offset >= 3000:
                await asyncio.sleep(0.05)  # slow cleanup after the cancellation
            finished.add(offset)

    pager = Paginator(fetch, limit_for_page=lambda: 1000, prefetch_depth=lambda: 4)
    assert await pager.collect() == list(range(2107))
    assert {3000, 4000, 5000} <= started  # the read-ahead window grew to the full depth after two full pages
    assert finished == started


async def test_prefetched_page_error_surfaces_after_earlier_rows_and_none_is_left_unretrieved(caplog) -> None:
    import gc

    class Boom(Exception):
        pass

    failed = asyncio.Event()

    async def fetch(offset: int, limit: int) -> list[int]:
        if offset in (0, 1000):
            if offset:
                await asyncio.wait_for(failed.wait(), 5)  # a later page fails while this one is still coming
            return list(range(offset, offset + 1000))
        failed.set()
        raise Boom(offset)

    got: list[int] = []
    pager = Paginator(fetch, limit_for_page=lambda: 1000, prefetch_depth=lambda: 4)
    with pytest.raises(Boom, match="2000"):
        async for row in pager:
            got.append(row)
    assert got == list(range(2000))  # every row before the failing page, then the error

    overshot = asyncio.Event()

    async def short_then_errors(offset: int, limit: int) -> list[int]:
        if offset == 0:
            return list(range(1000))
        if offset == 1000:
            await asyncio.wait_for(overshot.wait(), 5)  # a guess past the end fails first
            return [1]  # the last page: the failed overshoot past it is not an error
        overshot.set()
        raise Boom(offset)

    pager = Paginator(short_then_errors, limit_for_page=lambda: 1000, prefetch_depth=lambda: 4)
    assert len(await pager.collect()) == 1001
    gc.collect()
    await asyncio.sleep(0)
    assert "never retrieved" not in caplog.text


def keyed(nums) -> list[dict]:
    return [{"AptNum": n} for n in nums]


async def test_a_key_twice_in_one_page_is_yielded_once() -> None:
    async def fetch(offset: int, limit: int) -> list[dict]:
        return keyed([1, 2, 2, 3]) if offset == 0 else []

    pager = Paginator(fetch, limit_for_page=lambda: 100, prefetch_depth=lambda: 1, primary_key="AptNum")
    assert [r["AptNum"] for r in await pager.collect()] == [1, 2, 3]


async def test_identical_rows_without_a_key_are_not_taken_for_a_repeated_page() -> None:
    # queries/ShortQuery "SELECT 1 ...": every row the same, pages the same, and yet the server is right.
    async def fetch(offset: int, limit: int) -> list[dict]:
        return [{"1": 1}] * min(100, 250 - offset)

    pager = Paginator(fetch, limit_for_page=lambda: 100, prefetch_depth=lambda: 1)
    assert len(await pager.collect()) == 250


async def test_a_list_that_never_connects_gives_up() -> None:
    from odapi_async import PaginationError
    from odapi_async._paging.stream import MAX_RESYNCS

    fresh = iter(range(10**9))
    calls = 0

    async def fetch(offset: int, limit: int) -> list[dict]:
        nonlocal calls
        calls += 1
        return keyed(next(fresh) for _ in range(limit))  # every answer all new rows: the list churns fully

    pager = Paginator(fetch, limit_for_page=lambda: 100, prefetch_depth=lambda: 1, primary_key="AptNum")
    with pytest.raises(PaginationError, match="lost its place"):
        await pager.collect()
    assert calls <= 2 * (MAX_RESYNCS + 1)  # bounded: it does not page forever


async def test_a_page_that_loses_its_place_steps_back_until_it_connects() -> None:
    rows = list(range(1000))
    asked: list[int] = []

    async def fetch(offset: int, limit: int) -> list[dict]:
        asked.append(offset)
        if len(asked) == 4:  # after three pages, 250 rows behind the cursor go
            del rows[10:260]
        return keyed(rows[offset : offset + limit])

    pager = Paginator(fetch, limit_for_page=lambda: 100, prefetch_depth=lambda: 1, primary_key="AptNum")
    got = [r["AptNum"] for r in await pager.collect()]
    assert got[:10] == list(range(10)) and set(range(297, 1000)) <= set(got)
    assert len(got) == len(set(got))
    assert asked[:4] == [0, 99, 198, 297]
    assert asked[4:7] == [198, 99, 0]  # stepped back one page, then doubling, until a page held a known row
