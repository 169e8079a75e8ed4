"""Exact streams over real sockets (issue 8): rows deleted and inserted while a stream runs, a server that
ignores Offset, and no request wasted past the end.

The churn tests also run their scenario the way streams worked before (no overlap, no primary key) and show the
row lost or doubled there, so each proves that the fix is what saves it.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest
from emulators import emulator_fixture

from odapi_async import Hub, OpenDental, PaginationError, Paginator
from odapi_async._settings import Mode
from odapi_async.emulator import Emulator
from rogue import RogueServer, json_answer
from support import CUST_KEY, DEV_KEY

pytestmark = [pytest.mark.integration]
module_loop = pytest.mark.asyncio(loop_scope="module")

DEV = "dev-streams"
KEYS = {"cust-s": "full"}
INTERVAL = 0.005


emu = emulator_fixture(
    seed=5, patients=300, developer_key=DEV, customer_keys=KEYS, intervals={"full": INTERVAL}
)


def session(emu: Emulator, mode: Mode) -> OpenDental:
    return OpenDental(
        DEV,
        "cust-s",
        endpoints=emu.endpoints,
        modes=(mode,),
        tier="full",
        intervals={"full": INTERVAL},
        hub=Hub(),
    )


def apt_nums(emu: Emulator) -> list[int]:
    return [r[0] for r in emu.db.execute("SELECT AptNum FROM appointments ORDER BY AptNum")]


def delete(emu: Emulator, nums: list[int]) -> None:
    emu.db.executemany("DELETE FROM appointments WHERE AptNum = ?", [(n,) for n in nums])


def reinsert(emu: Emulator, new_num: int, like: int) -> None:
    """A copy of appointment ``like`` under the key ``new_num`` (a free key: it lands where that key sorts)."""
    cols = [r[1] for r in emu.db.execute("PRAGMA table_info(appointments)")]
    rest = ", ".join(f'"{c}"' for c in cols if c != "AptNum")
    emu.db.execute(
        f'INSERT INTO appointments ("AptNum", {rest}) SELECT ?, {rest} FROM appointments WHERE AptNum = ?',
        (new_num, like),
    )


async def stream(pager: Paginator[Any], on_row: Callable[[int, int], None]) -> list[int]:
    """Every AptNum the stream yields; ``on_row(index, AptNum)`` runs before the next row is taken."""
    got = []
    async for row in pager:
        got.append(row.AptNum)
        on_row(len(got), row.AptNum)
    return got


def check_exact(got: list[int], throughout: set[int], ever: set[int]) -> None:
    assert len(got) == len(set(got)), "a row was yielded twice"
    assert throughout <= set(got), f"rows lost: {sorted(throughout - set(got))[:10]}"
    assert set(got) <= ever


@module_loop
async def test_a_row_deleted_behind_the_cursor_does_not_make_the_stream_skip_one(emu) -> None:
    for overlap in (1, 0):
        before = apt_nums(emu)
        victim = before[10]  # on the first page (Remote: 100 rows a page)

        def on_row(index: int, num: int) -> None:
            if index == 50:
                delete(emu, [victim])

        async with session(emu, "remote") as od:
            pager = od.appointments.list()
            if not overlap:  # the stream as it was: no overlap, no key to dedupe by
                pager = Paginator._from_spec(replace(pager._spec, overlap=0, primary_key=None))
            got = await stream(pager, on_row)
        check = set(before) - {victim}
        if overlap:
            check_exact(got, check, set(before))
        else:
            assert not check <= set(got), "without the overlap the stream should have skipped a row"


@module_loop
async def test_many_rows_deleted_behind_the_cursor_make_it_step_back(emu) -> None:
    before = apt_nums(emu)
    victims = before[20:270]  # two and a half pages, all behind the cursor when they go

    def on_row(index: int, num: int) -> None:
        if index == 350:
            delete(emu, victims)

    async with session(emu, "remote") as od:
        got = await stream(od.appointments.list(), on_row)
    check_exact(got, set(before) - set(victims), set(before))


@module_loop
async def test_a_row_inserted_behind_the_cursor_is_not_yielded_twice(emu) -> None:
    for overlap in (1, 0):
        before = apt_nums(emu)
        free = next(n for n in range(before[0], before[-1]) if n not in set(before))  # a hole left by deletes
        assert free < before[150]

        def on_row(index: int, num: int) -> None:
            if index == 150:  # on the second page, the hole behind: every later row shifts one place right
                reinsert(emu, free, before[-1])

        async with session(emu, "remote") as od:
            pager = od.appointments.list()
            if not overlap:  # the stream as it was: no overlap, no key to dedupe by
                pager = Paginator._from_spec(replace(pager._spec, overlap=0, primary_key=None))
            got = await stream(pager, on_row)
        delete(emu, [free])
        if overlap:
            check_exact(got, set(before), set(before) | {free})
        else:
            assert len(got) != len(set(got)), "without the overlap the stream should have doubled a row"


@pytest.mark.parametrize("mode", ["remote", "local"])
@pytest.mark.parametrize("seed", [1, 2, 3])
@module_loop
async def test_random_churn_every_row_that_stays_is_yielded_once(emu, mode, seed) -> None:
    rng = random.Random(seed)
    before = apt_nums(emu)
    touched: set[int] = set()
    inserted: set[int] = set()
    next_free = [max(before) + 1000]

    def on_row(index: int, num: int) -> None:
        if rng.random() > 0.02:
            return
        live = apt_nums(emu)
        for victim in rng.sample(live, k=min(len(live) // 50, rng.randint(1, 30))):
            touched.add(victim)
            delete(emu, [victim])
        for _ in range(rng.randint(0, 5)):  # new rows sort last: the stream may or may not reach them
            inserted.add(next_free[0])
            reinsert(emu, next_free[0], rng.choice(apt_nums(emu)))
            next_free[0] += 1

    async with session(emu, mode) as od:
        got = await stream(od.appointments.list(Limit=100), on_row)
    assert touched, "no churn happened: the test proved nothing"
    check_exact(got, set(before) - touched, set(before) | inserted)


@module_loop
async def test_a_server_that_ignores_offset_raises_instead_of_looping() -> None:
    page = [{"AptNum": n, "PatNum": 1} for n in range(1, 101)]
    async with RogueServer(lambda r: json_answer(page)) as server:
        od = OpenDental(DEV_KEY, CUST_KEY, endpoints={"local": server.url}, modes=("local",), hub=Hub())
        async with od:
            got = []
            with pytest.raises(PaginationError, match="ignore Offset") as caught:
                async for row in od.appointments.list(Limit=100):
                    got.append(row.AptNum)
    assert got == list(range(1, 101))  # the first page, once
    assert caught.value.offset == 99 and caught.value.operation == "appointments.list"
    assert len(server.requests) <= 5  # the two pages and at most the read-ahead window


def recorded(pager: Paginator[Any]) -> tuple[Paginator[Any], list[tuple[int, int]]]:
    """The same list, recording every page its stream asks for (offset, limit)."""
    asked: list[tuple[int, int]] = []
    fetch = pager._spec.fetch

    async def wrapper(offset: int, limit: int) -> list[Any]:
        asked.append((offset, limit))
        return await fetch(offset, limit)

    return Paginator._from_spec(replace(pager._spec, fetch=wrapper)), asked


@pytest.mark.parametrize(("mode", "cap", "depth"), [("remote", 100, 1), ("local", 1000, 4)])
@pytest.mark.parametrize("total", [None, 1000, 999, 1234])
@module_loop
async def test_requests_per_stream(emu, mode, cap, depth, total) -> None:
    live = apt_nums(emu)
    if total is not None:  # trim or grow the table to this many rows
        if len(live) > total:
            delete(emu, live[total:])
        for i in range(total - len(live)):
            reinsert(emu, live[-1] + 1 + i, live[0])
    total = len(apt_nums(emu))
    async with session(emu, mode) as od:
        for limit in (cap, 100, 37):
            pager = od.appointments.list(Limit=limit)
            pager, asked = recorded(pager)
            assert len(await pager.collect()) == total
            past_end = [o for o, _ in asked if o >= total]
            # With one row of overlap a page brings limit - 1 new rows; one confirming request only when the
            # last page's length could be a cap.
            needed = math.ceil((total - 1) / (limit - 1))
            last = total - (needed - 1) * (limit - 1)
            confirm = 1 if last == limit or (last % 100 == 0) else 0
            assert len(asked) - len(past_end) <= needed + confirm
            assert len(past_end) <= depth - 1 + confirm, (
                asked
            )  # read-ahead: at most depth - 1 guesses past it
