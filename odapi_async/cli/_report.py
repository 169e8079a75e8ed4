"""Live progress of a sync (one line per office) and its summary: a table, or JSON for scripts."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import anyio
from rich.cells import cell_len, set_cell_size
from rich.console import Console, ConsoleOptions, RenderResult
from rich.live import Live
from rich.segment import Segment
from rich.style import Style
from rich.table import Table

from odapi_async.sync import OfficeProgress

#: Seconds between redraws: a many-office table costs tens of milliseconds of CPU to draw, and a person reads it
#: no faster than this (docs/benchmarks.md, "The main job at scale").
REFRESH_SECONDS = 1.0


def _seconds(value: float | None) -> str:
    if value is None:
        return "—"
    if value < 60:
        return f"{value:.1f} s"
    return f"{int(value // 60)} min {int(value % 60):02d} s"


#: The live table's columns; the first two are aligned left, the rest right.
COLUMNS = ("office", "resource", "rows", "pages", "requests", "throttle waits", "elapsed", "ETA")
_LEFT = 2
_GAP = 2  # spaces between columns
_NARROWEST = 8  # a left column is cut (with "…") no narrower than this to fit the terminal
_STATE_STYLES = {"failed": Style(color="red"), "skipped": Style(color="yellow"), "done": Style(color="green")}


class ProgressTable:
    """The live table, laid out here: columns as wide as their widest cell, two spaces apart, a bold header, the
    state coloured (failed red, skipped yellow, done green).

    What rich's ``Table`` drew, without it: a ``Table`` measures and wraps every cell through rich's text layout,
    about 0.6 ms a row, so a terminal's height of rows cost ~30 ms of the event loop's CPU every second; here a
    redraw is a few string operations a row (``benchmarks/bench_progress_table.py``). Cells are plain text (an
    office's name is never read as markup). Wider than the terminal, the resource and office columns are cut to
    fit (down to 8 cells), then the lines are cropped.
    """

    def __init__(self, rows: Sequence[tuple[str, ...]]) -> None:
        self.rows = rows
        """One tuple of ``len(COLUMNS)`` cells a row (the closing row's empty cells included)."""

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        lines = [COLUMNS, *self.rows]
        widths = [max(cell_len(row[i]) for row in lines) for i in range(len(COLUMNS))]
        excess = sum(widths) + _GAP * (len(widths) - 1) - options.max_width
        for column in (1, 0):  # the resource column first: the closing row's counts may widen it
            if excess <= 0:
                break
            cut = min(excess, widths[column] - min(widths[column], _NARROWEST))
            widths[column] -= cut
            excess -= cut
        header = console.get_style("table.header")
        newline = Segment.line()
        gap = " " * _GAP
        for number, row in enumerate(lines):
            cells = [
                _fit(cell, width, left=i < _LEFT)
                for i, (cell, width) in enumerate(zip(row, widths, strict=True))
            ]
            if number == 0:
                yield Segment(gap.join(cells), header)
            elif (style := _STATE_STYLES.get(row[1])) is not None:
                yield Segment(cells[0] + gap)
                yield Segment(cells[1], style)
                yield Segment(gap + gap.join(cells[2:]))
            else:
                yield Segment(gap.join(cells))
            yield newline


def _fit(cell: str, width: int, *, left: bool) -> str:
    """``cell`` padded to ``width`` cells (aligned left or right), or cut to it with a closing "…"."""
    size = cell_len(cell)
    if size > width:
        return set_cell_size(cell, width - 1) + "…" if width > 1 else set_cell_size(cell, width)
    pad = " " * (width - size)
    return cell + pad if left else pad + cell


def progress_table(offices: Sequence[OfficeProgress], *, max_rows: int | None = None) -> ProgressTable:
    """One row per office; beyond ``max_rows`` (a terminal's height), the offices still running first, then the
    failed ones, and one closing row that counts the rest (drawing rows nobody can see cost a many-office run
    more CPU than its requests; see docs/benchmarks.md)."""
    shown: Sequence[OfficeProgress] = offices
    if max_rows is not None and len(offices) > max_rows:
        # running first, then failed, then done (each in the given order)
        ranked = sorted(offices, key=lambda o: 0 if o.finished is None else 1 if o.error else 2)
        shown = ranked[: max(max_rows - 1, 0)]
    rows: list[tuple[str, ...]] = []
    for office in shown:
        stats = office.throttle()
        if office.error:
            state = "failed"
        elif office.skipped:
            state = "skipped"
        elif office.finished is not None:
            state = "done"
        else:
            state = office.resource or "starting"
        rows.append(
            (
                office.name,
                state,
                f"{office.rows:,}",
                f"{office.pages:,}",
                f"{int(stats['requests']):,}",
                f"{int(stats['waits']):,} ({stats['wait_time']:.1f} s)",
                _seconds(office.elapsed),
                _seconds(office.eta()) if office.finished is None else "",
            )
        )
    if len(shown) < len(offices):
        shown_ids = {id(o) for o in shown}
        hidden = [o for o in offices if id(o) not in shown_ids]
        done = sum(1 for o in hidden if o.finished is not None and not o.error)
        failed = sum(1 for o in hidden if o.error)
        active = len(hidden) - done - failed
        counts = ", ".join(
            f"{n} {what}" for n, what in ((active, "running"), (done, "done"), (failed, "failed")) if n
        )
        rows.append((f"… {len(hidden)} more", counts, f"{sum(o.rows for o in hidden):,}", *[""] * 5))
    return ProgressTable(rows)


class LiveProgress:
    """Redraws the progress table while a sync runs (nothing when ``quiet`` or not on a terminal)."""

    def __init__(self, console: Console, offices: Sequence[OfficeProgress], *, quiet: bool) -> None:
        self._console = console
        self._offices = offices
        self._enabled = not quiet
        self._live: Live | None = None

    async def run(self, stop: anyio.Event) -> None:
        if not self._enabled:
            await stop.wait()
            return
        # Drawn from here only (no refresh thread of rich's own redrawing the same table in between), at most a
        # terminal's height of rows.
        with Live(self._table(), console=self._console, transient=True, auto_refresh=False) as live:
            while not stop.is_set():
                with anyio.move_on_after(REFRESH_SECONDS):
                    await stop.wait()
                live.update(self._table(), refresh=True)

    def _table(self) -> ProgressTable:
        return progress_table(self._offices, max_rows=max(self._console.size.height - 2, 1))


def summary(offices: Sequence[OfficeProgress]) -> dict[str, Any]:
    """Plain data: what each office did, for ``--json`` and for tests."""
    out: dict[str, Any] = {"ok": not any(o.failures for o in offices), "offices": []}
    for office in offices:
        stats = office.throttle()
        out["offices"].append(
            {
                "office": office.name,
                "ok": not office.failures,
                "error": office.error,
                **({"skipped": office.skipped} if office.skipped else {}),
                "rows": office.rows,
                "pages": office.pages,
                "requests": int(stats["requests"]),
                "throttle_waits": int(stats["waits"]),
                "throttle_wait_seconds": round(stats["wait_time"], 3),
                "seconds": round(office.elapsed, 3),
                "resources": [
                    {
                        "resource": r.resource,
                        "how": r.how,
                        "rows": r.rows,
                        "pages": r.pages,
                        "removed": r.removed,
                        "watermark": r.watermark,
                        **({"note": r.note} if r.note else {}),
                        **({"error": r.error} if r.error else {}),
                    }
                    for r in office.results
                ],
            }
        )
    return out


def print_summary(console: Console, offices: Sequence[OfficeProgress], *, as_json: bool) -> None:
    if as_json:
        console.print_json(json.dumps(summary(offices)))
        return
    table = Table(title="odapi sync")
    for column in ("office", "result", "rows", "removed", "requests", "throttle waits", "time"):
        table.add_column(column, justify="left" if column in ("office", "result") else "right")
    for office in offices:
        stats = office.throttle()
        removed = sum(r.removed for r in office.results)
        if office.error:
            result = "[red]failed[/red]"
        elif office.failures:
            result = f"[yellow]{len(office.failures)} resource(s) failed[/yellow]"
        elif office.skipped:
            result = "[yellow]skipped[/yellow] (another run)"
        else:
            result = "[green]ok[/green]"
        table.add_row(
            office.name,
            result,
            f"{office.rows:,}",
            f"{removed:,}",
            f"{int(stats['requests']):,}",
            f"{int(stats['waits']):,} ({stats['wait_time']:.1f} s)",
            _seconds(office.elapsed),
        )
    console.print(table)
    whole = sorted({r.resource for o in offices for r in o.results if r.how == "whole"})
    if whole:
        console.print(f"synced whole (no incremental filter, or first run): {', '.join(whole)}")
    for office in offices:
        for r in office.results:
            if r.note:
                console.print(f"{office.name}/{r.resource}: {r.note}", markup=False)


def interrupted_lines(offices: Sequence[OfficeProgress], resources: Sequence[str]) -> list[str]:
    """What an interrupted sync leaves, per office, and that the same command resumes from it.

    Every page is its own transaction and a resource's watermark is saved only after its last page, so: a
    finished resource is committed whole (the next run asks only for what changed since); the one in progress
    has the pages written so far and is listed again from its old watermark; the rest did not start.
    """
    lines = ["sync interrupted; committed so far:"]
    for office in offices:
        finished = [r.resource for r in office.results if not r.error]
        failed = [r.resource for r in office.results if r.error]
        ended = {r.resource for r in office.results}
        current = office.resource if office.resource and office.resource not in ended else None
        left = [r for r in resources if r not in ended and r != current]
        if office.error:
            state = f"failed: {office.error}"
        elif not left and current is None:
            state = "finished" if not failed else f"finished, failed: {', '.join(failed)}"
        elif current is not None:
            state = (
                f"stopped in {current} (its pages so far are kept; it is asked again from its old watermark)"
            )
        else:
            state = "stopped"
        done = ", ".join(finished) if finished else "none"
        line = f"  {office.name}: {office.rows:,} rows written; resources finished: {done}; {state}"
        if left:
            line += f"; not started: {', '.join(left)}"
        lines.append(line)
    lines.append("Run the same command again to resume: each resource goes on from what was committed.")
    return lines
