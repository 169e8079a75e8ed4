"""The live progress table of ``odapi sync``: bounded to the terminal's height, running offices first."""

from __future__ import annotations

import io

import anyio
import anyio.lowlevel
from rich.console import Console

from odapi_async.cli._report import LiveProgress, progress_table
from odapi_async.sync import OfficeProgress


def offices(n: int, *, finished: set[int], failed: set[int]) -> list[OfficeProgress]:
    out = []
    for i in range(n):
        office = OfficeProgress(f"office-{i}", resource="patients", rows=100 * i)
        if i in finished or i in failed:
            office.finished = office.started
        if i in failed:
            office.error = "ReadTimeout: boom"
        out.append(office)
    return out


def rendered(table: object, width: int = 150) -> str:
    console = Console(file=io.StringIO(), width=width, force_terminal=False, color_system=None)
    console.print(table)
    return console.file.getvalue()  # type: ignore[attr-defined, no-any-return]


def test_every_office_has_a_row_when_they_fit() -> None:
    text = rendered(progress_table(offices(5, finished={1}, failed=set()), max_rows=5))
    assert [line.split()[0] for line in text.splitlines()[1:]] == [f"office-{i}" for i in range(5)]
    assert "more" not in text


def test_beyond_max_rows_running_then_failed_offices_and_one_row_counting_the_rest() -> None:
    rows = offices(10, finished={0, 1, 2, 3, 4, 5}, failed={6})  # 7, 8, 9 running
    lines = rendered(progress_table(rows, max_rows=5)).splitlines()[1:]
    assert [line.split()[0] for line in lines[:4]] == ["office-7", "office-8", "office-9", "office-6"]
    assert lines[4].split()[:5] == ["…", "6", "more", "6", "done"]
    # the rows of the six hidden (done) offices: 0 + 100 + ... + 500
    assert "1,500" in lines[4]


def test_the_live_table_draws_at_most_the_terminals_height() -> None:
    sink = io.StringIO()
    console = Console(file=sink, force_terminal=True, width=120, height=8, color_system=None)
    live = LiveProgress(console, offices(40, finished=set(), failed=set()), quiet=False)

    async def main() -> None:
        stop = anyio.Event()
        async with anyio.create_task_group() as tg:
            tg.start_soon(live.run, stop)
            await anyio.lowlevel.checkpoint()  # the first frame is drawn on entering
            stop.set()

    anyio.run(main)
    text = sink.getvalue()
    assert "office-0" in text and "35 more" in text
    assert "office-5 " not in text  # the header, 5 offices and the closing row: 7 of the 8 lines
