"""DataFrame build speed: rows/s from decoded pages into polars/pandas frames, against collecting models only.

The same 10 pages of 1000 documented-shape appointments (35 columns), best of N interleaved runs:
- ``models``: decode the pages into models (what ``collect()`` does after the network);
- ``polars`` / ``pandas``: the same, then ``rows_to_polars`` / ``rows_to_pandas`` (typed columns from the
  model, one attribute read per cell);
- ``polars_dicts``: the same, then ``polars.DataFrame([row.to_dict() ...])`` — the per-row-dict way, for
  comparison (its columns are inferred, not typed).

Prints one JSON line and a one-line summary. Needs polars and pandas (``pip install 'odapi-async[polars,pandas]'``).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import polars  # noqa: E402

from odapi_async._codec import decode_list  # noqa: E402
from odapi_async._paging.frames import rows_to_pandas, rows_to_polars  # noqa: E402
from odapi_async.resources import Appointment  # noqa: E402

PAGES = 10
ROWS = 1000
RUNS = 15


def page() -> bytes:
    data = json.loads((ROOT / "spec" / "examples" / "Appointments__list__1.json").read_text())["json"]
    template = dict(data[0] if isinstance(data, list) else data)
    rows = []
    for i in range(ROWS):
        row = dict(template)
        row["AptNum"] = i + 1
        row["DateTimeArrived"] = "0001-01-01 00:00:00" if i % 2 else "2024-03-01 09:10:00"
        rows.append(row)
    return json.dumps(rows).encode()


def main() -> None:
    raw = page()

    def models() -> list[Any]:
        rows: list[Any] = []
        for _ in range(PAGES):
            rows.extend(decode_list(raw, Appointment))
        return rows

    runs = {
        "models": models,
        "polars": lambda: rows_to_polars(models(), Appointment),
        "pandas": lambda: rows_to_pandas(models(), Appointment),
        "polars_dicts": lambda: polars.DataFrame([r.to_dict() for r in models()]),
    }
    assert rows_to_polars(models(), Appointment).shape == (PAGES * ROWS, 35)
    best = dict.fromkeys(runs, float("inf"))
    for _ in range(RUNS):
        for name, fn in runs.items():
            start = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - start)
    rates = {name: PAGES * ROWS / s for name, s in best.items()}
    build = {  # the frame step alone: total time minus the decoding both share
        name: PAGES * ROWS / max(best[name] - best["models"], 1e-9)
        for name in ("polars", "pandas", "polars_dicts")
    }
    print(
        json.dumps(
            {"benchmark": "frames", "rows": PAGES * ROWS, "rows_per_s": rates, "build_rows_per_s": build}
        )
    )
    print(
        f"frames: models {rates['models'] / 1000:.0f}k rows/s; with polars {rates['polars'] / 1000:.0f}k "
        f"(build alone {build['polars'] / 1000:.0f}k), pandas {rates['pandas'] / 1000:.0f}k "
        f"(build {build['pandas'] / 1000:.0f}k), polars from per-row dicts {rates['polars_dicts'] / 1000:.0f}k "
        f"(build {build['polars_dicts'] / 1000:.0f}k)"
    )


if __name__ == "__main__":
    main()
