"""The dlt source against ``odapi sync`` on the same practice: rows/s and requests, first run and a rerun.

Both paths list the same resources of one office (a customer key each, so the emulator counts their requests
apart): ``odapi sync``'s engine (``odapi_async.sync.sync_office``) into SQLite, and ``opendental_source`` through
dlt into DuckDB (extract, normalize, load timed apart). Local listener: every incremental resource; Remote
listener (interval ``--remote-interval``): patients and appointments, for the request rate against the throttle.
The emulator runs in its own process.

    python benchmarks/bench_dlt.py [--patients 2000] [--remote-interval 0.05] [--skip-remote]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import bench_emulator
import httpx2

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")  # no network here: dlt would try to report usage
os.environ.setdefault("RUNTIME__LOG_LEVEL", "WARNING")

import dlt  # noqa: E402

from odapi_async import OpenDental  # noqa: E402
from odapi_async.dlt import failed_offices, opendental_source  # noqa: E402
from odapi_async.emulator import Emulator  # noqa: E402
from odapi_async.sync import OfficeConfig, SyncStore, incremental_resources, sync_office, sync_specs  # noqa: E402

DEV = "dev"
#: The paths measured: the engine of ``odapi sync``, and dlt with its default file format for DuckDB
#: (``insert_values``) and with ``jsonl`` (much faster to load into DuckDB, see docs/dlt.md).
PATHS = ("sync", "dlt", "dlt-jsonl")
KEYS = {f"{path}-{mode}": "full" for path in PATHS for mode in ("local", "remote")}


def emulator_requests(endpoints: dict[str, str], key: str, listener: str) -> dict[str, Any]:
    stats = httpx2.get(endpoints["local"].rsplit("/api/v1", 1)[0] + "/_emulator/stats", timeout=30).json()
    entry = stats["keys"].get(Emulator.key_id(key), {}).get("listeners", {}).get(listener, {})
    return {"requests": entry.get("requests", 0), "violations": entry.get("violations", 0),
            "arrivals": entry.get("accepted_arrivals", [])}  # fmt: skip


def session_factory(endpoints: dict[str, str], key: str, mode: str, interval: float) -> Any:
    def make() -> OpenDental:
        return OpenDental(
            DEV, key, modes=(mode,), endpoints=endpoints, tier="full", intervals={"full": interval}
        )

    return make


def run_sync(office: OfficeConfig, db: Path, resources: list[str]) -> dict[str, Any]:
    store = SyncStore(db)
    start = time.perf_counter()
    try:
        progress = asyncio.run(sync_office(office, store, sync_specs(resources)))
    finally:
        store.close()
    return {"rows": progress.rows, "seconds": round(time.perf_counter() - start, 3)}


def run_dlt(
    office: OfficeConfig, pipeline: dlt.Pipeline, resources: list[str], file_format: str | None
) -> dict[str, Any]:
    times = {}
    start = time.perf_counter()
    options = {"loader_file_format": file_format} if file_format else {}
    pipeline.extract(opendental_source([office], resources), **options)
    times["extract"] = time.perf_counter() - start
    pipeline.normalize()
    times["normalize"] = time.perf_counter() - times["extract"] - start
    pipeline.load()
    total = time.perf_counter() - start
    times["load"] = total - times["extract"] - times["normalize"]
    assert not failed_offices(pipeline), failed_offices(pipeline)
    counts = pipeline.last_trace.last_normalize_info.row_counts
    rows = sum(n for table, n in counts.items() if not table.startswith("_dlt"))
    return {"rows": rows, "seconds": round(total, 3), **{k: round(v, 3) for k, v in times.items()}}


def measure(
    endpoints: dict[str, str], tmp: Path, mode: str, resources: list[str], interval: float
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for path in PATHS:
        key = f"{path}-{mode}"
        office = OfficeConfig("bench", session_factory(endpoints, key, mode, interval))
        name = f"bench_{path}_{mode}".replace("-", "_")
        pipeline = dlt.pipeline(
            name, destination=dlt.destinations.duckdb(str(tmp / f"{name}.duckdb")),
            dataset_name="od", pipelines_dir=str(tmp / "dlt"),
        )  # fmt: skip
        runs = []
        for run in ("first", "rerun"):
            before = emulator_requests(endpoints, key, mode)["requests"]
            if path == "sync":
                result = run_sync(office, tmp / f"{mode}.sqlite", resources)
            else:
                result = run_dlt(office, pipeline, resources, "jsonl" if path == "dlt-jsonl" else None)
            stats = emulator_requests(endpoints, key, mode)
            result["run"] = run
            result["requests"] = stats["requests"] - before
            result["rows_per_second"] = round(result["rows"] / result["seconds"])
            if mode == "remote" and run == "first":
                arrivals = stats["arrivals"]
                achieved = (len(arrivals) - 1) / (arrivals[-1] - arrivals[0])
                result["achieved_over_allowed"] = round(achieved * interval, 3)
                result["violations"] = stats["violations"]
            runs.append(result)
        out[path] = runs
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=2000)
    parser.add_argument("--remote-interval", type=float, default=0.05)
    parser.add_argument("--skip-remote", action="store_true")
    args = parser.parse_args()
    extra: tuple[str, ...] = ()
    for key, tier in KEYS.items():
        extra += ("--customer-key", f"{key}={tier}")
    proc, endpoints = bench_emulator.start_emulator(args.patients, interval=args.remote_interval, extra=extra)
    out: dict[str, Any] = {"patients": args.patients}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            out["local"] = measure(
                endpoints, Path(tmp), "local", incremental_resources(), args.remote_interval
            )
            if not args.skip_remote:
                out["remote"] = measure(
                    endpoints, Path(tmp), "remote", ["patients", "appointments"], args.remote_interval
                )
    finally:
        proc.terminate()
        proc.communicate(timeout=30)
    print(json.dumps(out))
    for mode in ("local", "remote"):
        for path in PATHS:
            for r in out.get(mode, {}).get(path, []):
                extra_text = ""
                if "extract" in r:
                    extra_text = (
                        f", extract {r['extract']} s, normalize {r['normalize']} s, load {r['load']} s"
                    )
                if "achieved_over_allowed" in r:
                    extra_text += (
                        f", achieved/allowed {r['achieved_over_allowed']}, {r['violations']} violations"
                    )
                print(f"{mode} {path:9} {r['run']:5}: {r['rows']:,} rows in {r['seconds']} s "
                      f"({r['rows_per_second']:,} rows/s), {r['requests']} requests{extra_text}")  # fmt: skip


if __name__ == "__main__":
    main()
