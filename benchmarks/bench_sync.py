"""Sync throughput: one office into SQLite over the Local listener, and over the throttled Remote listener.

Local: every incremental resource of a practice of ``--patients`` patients (rows/s, requests, the share of the time
spent writing SQLite). Remote: the patients list with a short interval T; the achieved request rate measured at
the emulator (accepted arrivals) over the allowed one (1/T) should be at least 0.97.

    python benchmarks/bench_sync.py [--patients 10000] [--remote-interval 0.25] [--skip-remote]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import bench_emulator
import httpx2

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from odapi_async import OpenDental  # noqa: E402
from odapi_async.sync import OfficeConfig, SyncStore, incremental_resources, sync_office, sync_specs  # noqa: E402

DEV, KEY = "dev", "bench-sync"


class TimedStore(SyncStore):
    """Counts the seconds spent writing pages (each in one transaction)."""

    write_seconds = 0.0

    def write_page(self, *args: Any, **kwargs: Any) -> None:
        start = time.perf_counter()
        super().write_page(*args, **kwargs)
        self.write_seconds += time.perf_counter() - start


def start_emulator(patients: int, interval: float) -> tuple[subprocess.Popen[str], dict[str, str]]:
    return bench_emulator.start_emulator(patients, interval=interval, extra=("--customer-key", f"{KEY}=full"))


async def sync_once(session: OpenDental, db: Path, resources: list[str]) -> tuple[dict[str, Any], TimedStore]:
    store = TimedStore(db)
    start = time.perf_counter()
    try:
        progress = await sync_office(OfficeConfig("bench", lambda: session), store, sync_specs(resources))
    finally:
        store.close()
    elapsed = time.perf_counter() - start
    requests = sum(s.requests for s in progress.session.throttle_stats().values()) if progress.session else 0
    return {
        "rows": progress.rows,
        "pages": progress.pages,
        "requests": requests,
        "seconds": round(elapsed, 3),
    }, store


def key_id(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:10]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=10_000)
    parser.add_argument("--remote-interval", type=float, default=0.25)
    parser.add_argument("--skip-remote", action="store_true")
    args = parser.parse_args()
    proc, endpoints = start_emulator(args.patients, args.remote_interval)
    out: dict[str, Any] = {"patients": args.patients}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            local = OpenDental(DEV, KEY, modes=("local",), endpoints=endpoints)
            result, store = asyncio.run(sync_once(local, Path(tmp) / "local.sqlite", incremental_resources()))
            result["rows_per_second"] = round(result["rows"] / result["seconds"])
            result["sqlite_write_seconds"] = round(store.write_seconds, 3)
            result["sqlite_write_share"] = round(store.write_seconds / result["seconds"], 3)
            out["local"] = result
            if not args.skip_remote:
                interval = args.remote_interval
                remote = OpenDental(DEV, KEY, modes=("remote",), endpoints=endpoints, tier="full",
                                    intervals={"full": interval})  # fmt: skip
                result, _ = asyncio.run(sync_once(remote, Path(tmp) / "remote.sqlite", ["patients"]))
                stats = httpx2.get(endpoints["local"].rsplit("/api/v1", 1)[0] + "/_emulator/stats").json()
                remote_stats = stats["keys"][key_id(KEY)]["listeners"]["remote"]
                arrivals = remote_stats["accepted_arrivals"]
                achieved = (len(arrivals) - 1) / (arrivals[-1] - arrivals[0])
                result.update(
                    interval=interval,
                    violations=remote_stats["violations"],
                    achieved_rate=round(achieved, 3),
                    allowed_rate=round(1 / interval, 3),
                    achieved_over_allowed=round(achieved * interval, 3),
                )
                out["remote"] = result
    finally:
        proc.terminate()
        proc.communicate(timeout=30)
    print(json.dumps(out))
    local = out["local"]
    line = (f"sync: local {local['rows']:,} rows in {local['seconds']} s ({local['rows_per_second']:,} rows/s, "
            f"{local['requests']} requests, SQLite writes {local['sqlite_write_share']:.0%} of the time)")  # fmt: skip
    if "remote" in out:
        r = out["remote"]
        line += (f"; remote T={r['interval']} s: {r['requests']} requests, achieved/allowed rate "
                 f"{r['achieved_over_allowed']}, {r['violations']} violations")  # fmt: skip
    print(line)


if __name__ == "__main__":
    main()
