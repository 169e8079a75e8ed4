"""The sync's two databases side by side: one office over Local into SQLite, then into PostgreSQL; then a fleet.

Part 1, one process: the same sync (every incremental resource of a practice of ``--patients`` patients, over
the emulator's Local listener) into a SQLite file and into a PostgreSQL database, in one run. Reported for each:
rows/s, the client's CPU per row (the whole process: HTTP, decoding and the store), and the store's own share
(seconds and CPU spent in ``write_page``, which runs in worker threads).

Part 2, ``--workers`` fleet workers (``odapi sync --redis URL --db postgresql://...`` processes, each in its own
directory) over an offices file of ``--offices`` offices, into one database: the wall time and rows/s of the
whole round, and that every office holds the rows of the first part.

PostgreSQL is a throwaway cluster started here (``tests/pg_support.py``) with fsync on and
``synchronous_commit=off``, the durability of the SQLite store's WAL with ``synchronous=NORMAL``; or ``--dsn``.

    python benchmarks/bench_sync_postgres.py [--patients 10000] [--workers 4] [--offices 8] [--dsn URL]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import bench_emulator

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from odapi_async import OpenDental  # noqa: E402
from odapi_async.sync import (  # noqa: E402
    OfficeConfig,
    PostgresStore,
    SyncStore,
    incremental_resources,
    sync_office,
    sync_specs,
)

DEV, KEY = "dev", "bench-pg"


def timed(cls: type) -> type:
    class Timed(cls):  # type: ignore[misc,valid-type]
        """Counts the wall and CPU seconds spent writing pages (each in one transaction)."""

        write_seconds = 0.0
        write_cpu = 0.0

        def write_page(self, *args: Any, **kwargs: Any) -> None:
            start, cpu = time.perf_counter(), time.thread_time()
            super().write_page(*args, **kwargs)
            self.write_seconds += time.perf_counter() - start
            self.write_cpu += time.thread_time() - cpu

    return Timed


def backend_cpu(store: Any) -> float | None:
    """CPU seconds of the PostgreSQL server process serving the store's connection (Linux, same host)."""
    conn = getattr(store, "_conn", None)
    if not isinstance(store, PostgresStore) or conn is None:
        return None
    try:
        fields = Path(f"/proc/{conn.info.backend_pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


async def sync_once(session: OpenDental, store: Any) -> dict[str, Any]:
    start, cpu = time.perf_counter(), time.process_time()
    server = backend_cpu(store)
    try:
        progress = await sync_office(
            OfficeConfig("bench", lambda: session), store, sync_specs(incremental_resources())
        )
        if server is not None:
            after = backend_cpu(store)
            server = None if after is None else after - server
    finally:
        store.close()
    elapsed, used = time.perf_counter() - start, time.process_time() - cpu
    assert not progress.failures, progress.failures
    return {
        "rows": progress.rows,
        "pages": progress.pages,
        "seconds": round(elapsed, 3),
        "rows_per_second": round(progress.rows / elapsed),
        "client_cpu_us_per_row": round(used / progress.rows * 1e6, 1),
        "store_seconds": round(store.write_seconds, 3),
        "store_cpu_us_per_row": round(store.write_cpu / progress.rows * 1e6, 1),
        # The database server's share (PostgreSQL only: SQLite's is in the client's).
        "server_cpu_us_per_row": None if server is None else round(server / progress.rows * 1e6, 1),
    }


def fleet(
    endpoints: dict[str, str], dsn: str, redis_url: str, workers: int, offices: int, tmp: Path
) -> dict[str, Any]:
    names = [f"office{n:02d}" for n in range(offices)]
    file = tmp / "offices.toml"
    file.write_text(
        f'developer_key = "{DEV}"\n[defaults]\nendpoints = {{ local = "{endpoints["local"]}" }}\nmodes = ["local"]\n'
        + "".join(f'\n[offices.{n}]\ncustomer_key = "{KEY}"\n' for n in names),
        encoding="utf-8",
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    start = time.perf_counter()
    procs = []
    for i in range(workers):
        (tmp / f"w{i}").mkdir()
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "odapi_async.cli", "sync", "--offices", str(file), "--db", dsn, "--redis",
             redis_url, "--json", "--round", "bench"],
            cwd=tmp / f"w{i}", env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        ))  # fmt: skip
    rows = 0
    for p in procs:
        out, err = p.communicate(timeout=1800)
        if p.returncode != 0:
            raise SystemExit(f"a fleet worker failed: {err[-2000:]}")
        rows += sum(o["rows"] for o in json.loads(out)["offices"])
    elapsed = time.perf_counter() - start
    return {"workers": workers, "offices": offices, "rows": rows, "seconds": round(elapsed, 3),
            "rows_per_second": round(rows / elapsed)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--offices", type=int, default=8)
    parser.add_argument(
        "--dsn", help="a PostgreSQL URL to use instead of a throwaway cluster (it must be empty)"
    )
    parser.add_argument("--skip-fleet", action="store_true")
    parser.add_argument(
        "--repeat", type=int, default=2, help="runs of each store, alternating (the best is kept)"
    )
    args = parser.parse_args()

    cluster_box: Any = None
    dsn = args.dsn
    if dsn is None:
        import pg_support

        reason = pg_support.why_not()
        if reason:
            raise SystemExit(f"no PostgreSQL: {reason}")
        cluster_box = pg_support.start_cluster(fast=False)
        cluster = next(cluster_box)
        cluster.create_database("fleet")
        dsn = cluster.url("fleet")
    proc, endpoints = bench_emulator.start_emulator(args.patients, extra=("--customer-key", f"{KEY}=full"))
    out: dict[str, Any] = {"patients": args.patients}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            # Alternating SQLite and PostgreSQL runs, each into a fresh database; the best of each is kept (the
            # machine is shared: a busy moment slows one run, not one store).
            runs: dict[str, list[dict[str, Any]]] = {"sqlite": [], "postgres": []}
            for n in range(args.repeat):
                local = OpenDental(DEV, KEY, modes=("local",), endpoints=endpoints)
                runs["sqlite"].append(
                    asyncio.run(sync_once(local, timed(SyncStore)(Path(tmp) / f"bench{n}.sqlite")))
                )
                if cluster_box is not None:
                    cluster.create_database(f"bench{n}")
                    target = cluster.url(f"bench{n}")
                else:
                    target = dsn
                local = OpenDental(DEV, KEY, modes=("local",), endpoints=endpoints)
                runs["postgres"].append(asyncio.run(sync_once(local, timed(PostgresStore)(target))))
            for store, results in runs.items():
                out[store] = max(results, key=lambda r: r["rows_per_second"])
                out[store]["all_rows_per_second"] = [r["rows_per_second"] for r in results]
            if not args.skip_fleet and cluster_box is not None:
                from redis_support import HAVE_REDIS, RedisServer

                if HAVE_REDIS:
                    redis = RedisServer()
                    redis.start()
                    try:
                        out["fleet"] = fleet(
                            endpoints, cluster.url("fleet"), redis.url, args.workers, args.offices, Path(tmp)
                        )
                    finally:
                        redis.close()
    finally:
        proc.terminate()
        proc.communicate(timeout=30)
        if cluster_box is not None:
            cluster_box.close()
    print(json.dumps(out))
    s, p = out["sqlite"], out["postgres"]
    line = (
        f"sync of {s['rows']:,} rows over Local: SQLite {s['rows_per_second']:,} rows/s "
        f"({s['client_cpu_us_per_row']} us CPU/row, store {s['store_cpu_us_per_row']} us); PostgreSQL "
        f"{p['rows_per_second']:,} rows/s ({p['client_cpu_us_per_row']} us CPU/row, store {p['store_cpu_us_per_row']} us, "
        f"server {p['server_cpu_us_per_row']} us)"
    )
    if "fleet" in out:
        f = out["fleet"]
        line += f"; fleet of {f['workers']} into one database: {f['rows']:,} rows of {f['offices']} offices in {f['seconds']} s ({f['rows_per_second']:,} rows/s)"
    print(line)


if __name__ == "__main__":
    main()
