"""The live progress table of ``odapi sync``: CPU of one redraw at N offices (issue 20).

Builds N offices as a running ``odapi sync`` has them (each with a session whose throttle has granted requests,
half still running, a quarter done, some failed), then times ``LiveProgress``'s redraw (the table built and
written through rich's ``Live`` to a terminal that is ``/dev/null``, 50 lines high as in
``bench_sync_scale.py``), and the table alone rendered to text.

    python benchmarks/bench_progress_table.py [--offices 50 200 1000] [--height 50] [--repeat 50]

Prints one JSON line per N: milliseconds of CPU per redraw (the median of ``--repeat``), and per row drawn.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rich.console import Console  # noqa: E402
from rich.live import Live  # noqa: E402

from odapi_async import OpenDental  # noqa: E402
from odapi_async.cli._report import LiveProgress, progress_table  # noqa: E402
from odapi_async.sync import OfficeProgress, ResourceResult  # noqa: E402


async def offices(n: int) -> tuple[list[OfficeProgress], list[OpenDental]]:
    """N offices mid-run: sessions whose Remote throttle granted a few requests each."""
    out, sessions = [], []
    endpoints = {"remote": "http://127.0.0.1:9/api/v1"}
    for i in range(n):
        od = OpenDental("dev", f"bench-table-{i}", modes=("remote",), endpoints=endpoints, tier="full",
                        intervals={"full": 1e-6})  # fmt: skip
        core = od._core
        for _ in range(1 + i % 7):
            async with core.backend.slot("remote", core.key_id) as slot:
                slot.mark_sent()
        progress = OfficeProgress(f"office-{i}", resource="patients", session=od, rows=100 * (i % 15),
                                  pages=i % 15, resource_rows=100 * (i % 15), plan={"patients": 1500})  # fmt: skip
        if i % 4 == 1:
            progress.finished = progress.started + 12.5
            progress.results.append(ResourceResult("patients", "whole", rows=1500, pages=16))
        elif i % 17 == 3:
            progress.finished = progress.started + 3.0
            progress.error = "ReadTimeout: the office did not answer"
        out.append(progress)
        sessions.append(od)
    return out, sessions


def cpu_ms(fn: object, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.process_time()
        fn()  # type: ignore[operator]
        times.append((time.process_time() - start) * 1e3)
    return statistics.median(times)


def measure(n: int, height: int, repeat: int) -> dict[str, object]:
    progress, sessions = asyncio.run(offices(n))
    sink = open(os.devnull, "w")  # noqa: SIM115
    console = Console(file=sink, force_terminal=True, width=120, height=height)
    live_progress = LiveProgress(console, progress, quiet=False)
    text_console = Console(file=io.StringIO(), width=120, force_terminal=False, color_system=None)
    rows = min(n, max(height - 2, 1))
    with Live(live_progress._table(), console=console, transient=True, auto_refresh=False) as live:
        redraw = cpu_ms(lambda: live.update(live_progress._table(), refresh=True), repeat)
    build = cpu_ms(live_progress._table, repeat)
    plain = cpu_ms(lambda: text_console.print(progress_table(progress, max_rows=height - 2)), repeat)
    for od in sessions:
        asyncio.run(od.aclose())
    sink.close()
    return {
        "bench": "progress_table",
        "offices": n,
        "rows_drawn": rows,
        "redraw_ms": round(redraw, 3),
        "build_ms": round(build, 3),
        "print_plain_ms": round(plain, 3),
        "redraw_us_per_row": round(redraw / rows * 1e3, 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--offices", type=int, nargs="+", default=[50, 200, 1000])
    ap.add_argument("--height", type=int, default=50, help="the terminal's lines (bench_sync_scale.py: 50)")
    ap.add_argument("--repeat", type=int, default=50)
    args = ap.parse_args()
    for n in args.offices:
        print(json.dumps(measure(n, args.height, args.repeat)), flush=True)


if __name__ == "__main__":
    main()
