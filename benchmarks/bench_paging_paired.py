"""odapi against the bare loop, client-bound, as paired differences: the figure ``bench_paging.py`` cannot resolve.

    python benchmarks/bench_paging_paired.py [--rounds 15] [--rows 100000]

A whole ``bench_paging.py`` run gives odapi / bare as the ratio of two best-of-7 rates, and on a shared
machine that ratio moved from 0.80 to 1.05 over runs of the same code. Here the contenders stream from the
fake server of ``bench_paging.py`` (the emulator's first page again and again, so the client is the
bottleneck) in one process, interleaved round after round; each round gives each contender's client CPU a
row, and the figure reported is the median over rounds of odapi's CPU minus the bare loop's in the same round
(with read-ahead 3, the default, and without). Drift of the machine moves both sides of a round alike.

Prints one JSON line, then a summary. Target: odapi's CPU a row at most the bare loop's (difference <= 0).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_paging as paging  # noqa: E402


def rounds_of(
    contenders: dict[str, Callable[[], tuple[int, int]]], rounds: int, rows: int
) -> dict[str, list[float]]:
    """Client CPU µs a row of each contender, one entry per round (after a warm-up round)."""
    for run in contenders.values():
        run()
    cpu: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(rounds):
        for name, run in contenders.items():
            gc.collect()
            started = time.process_time()
            got = run()
            cpu[name].append((time.process_time() - started) / rows * 1e6)
            if got != (rows, rows):
                raise SystemExit(
                    f"{name}: got {got[0]} rows ending at {got[1]}; expected {rows} ending {rows}"
                )
    return cpu


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--rows", type=int, default=100_000, help="rows a stream")
    args = ap.parse_args()
    emulator, endpoints = paging.start_emulator(300)  # only its first page is used
    fake = None
    try:
        with tempfile.TemporaryDirectory() as tmp:
            fake, root = paging.start_fake_server(endpoints["local"], str(Path(tmp) / "page.json"))
            base = f"{root}/{args.rows}/api/v1"
            contenders: dict[str, Callable[[], tuple[int, int]]] = {
                "odapi ra=3": lambda: asyncio.run(paging.odapi_stream(base, paging.AHEAD)),
                "bare ra=3": lambda: asyncio.run(paging.bare_stream(base, paging.AHEAD)),
                "odapi ra=0": lambda: asyncio.run(paging.odapi_stream(base, 0)),
                "bare ra=0": lambda: asyncio.run(paging.bare_stream(base, 0)),
            }
            cpu = rounds_of(contenders, args.rounds, args.rows)
    finally:
        if fake is not None:
            paging.stop_child(fake)
        paging.stop_child(emulator)

    def paired(ahead: int) -> float:
        odapi, bare = cpu[f"odapi ra={ahead}"], cpu[f"bare ra={ahead}"]
        return round(statistics.median(o - b for o, b in zip(odapi, bare, strict=True)), 3)

    result = {
        "benchmark": "paging_paired",
        "rows": args.rows,
        "rounds": args.rounds,
        "cpu_us_per_row_median": {name: round(statistics.median(v), 3) for name, v in cpu.items()},
        "odapi_minus_bare_us_per_row": {"ra=3": paired(3), "ra=0": paired(0)},
    }
    print(json.dumps(result))
    diff = result["odapi_minus_bare_us_per_row"]
    medians = result["cpu_us_per_row_median"]
    print(
        f"paired, client-bound: odapi - bare = {diff['ra=3']:+.3f} µs a row with read-ahead 3 "
        f"(odapi {medians['odapi ra=3']:.2f}, bare {medians['bare ra=3']:.2f}), {diff['ra=0']:+.3f} without; "
        f"target <= 0 (odapi at least as fast): {'met' if diff['ra=3'] <= 0 else 'MISSED'}"
    )


if __name__ == "__main__":
    main()
