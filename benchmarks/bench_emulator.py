"""Emulator throughput: rows/s served on 1000-row pages of appointments from the local listener.

The emulator runs in a subprocess (``python -m odapi_async.emulator``) so the client does not share its CPU
loop. Prints one JSON line, then a one-line summary.

    python benchmarks/bench_emulator.py [--patients 1000] [--seconds 3] [--concurrency 1]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx2
import msgspec

ROOT = Path(__file__).resolve().parent.parent
HEADERS = {"Authorization": "ODFHIR dev/cust-full", "Content-Type": "application/json"}


def start_emulator(patients: int) -> tuple[subprocess.Popen[str], dict[str, str]]:
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    cmd = [
        sys.executable,
        "-m",
        "odapi_async.emulator",
        "--patients",
        str(patients),
        "--port-local",
        "0",
        "--port-service",
        "0",
        "--port-remote",
        "0",
        "--print-endpoints-json",
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=env, cwd=ROOT)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        proc.kill()
        raise SystemExit("emulator did not start")
    return proc, json.loads(line)


async def run(base: str, seconds: float, concurrency: int) -> dict[str, float]:
    async with httpx2.AsyncClient(timeout=30.0) as client:
        first = await client.get(base + "/appointments", params={"Limit": 1000}, headers=HEADERS)
        first.raise_for_status()
        total = int(
            (
                await client.put(
                    base + "/queries/ShortQuery",
                    json={"SqlCommand": "SELECT count(*) AS n FROM appointments"},
                    headers=HEADERS,
                )
            ).json()[0]["n"]
        )
        pages = max(total // 1000, 1)
        rows = requests = 0
        latencies: list[float] = []
        deadline = time.perf_counter() + seconds

        async def worker(offset_seed: int) -> None:
            nonlocal rows, requests
            i = offset_seed
            while time.perf_counter() < deadline:
                t0 = time.perf_counter()
                r = await client.get(
                    base + "/appointments",
                    params={"Limit": 1000, "Offset": (i % pages) * 1000},
                    headers=HEADERS,
                )
                latencies.append(time.perf_counter() - t0)
                r.raise_for_status()
                rows += len(msgspec.json.decode(r.content))
                requests += 1
                i += 1

        t_start = time.perf_counter()
        await asyncio.gather(*(worker(k) for k in range(concurrency)))
        elapsed = time.perf_counter() - t_start
    latencies.sort()
    return {
        "rows_per_s": round(rows / elapsed),
        "pages_per_s": round(requests / elapsed, 1),
        "p50_ms": round(latencies[len(latencies) // 2] * 1000, 2),
        "p95_ms": round(latencies[int(len(latencies) * 0.95)] * 1000, 2),
        "pages": requests,
        "total_rows_in_table": total,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--patients", type=int, default=1000)
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--concurrency", type=int, default=1)
    args = ap.parse_args()
    proc, endpoints = start_emulator(args.patients)
    try:
        result = asyncio.run(run(endpoints["local"], args.seconds, args.concurrency))
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    out = {"benchmark": "emulator_rows_per_s", "listener": "local", "page_size": 1000, **vars(args), **result}
    print(json.dumps(out))
    print(
        f"emulator: {result['rows_per_s']:,} rows/s on 1000-row pages (local listener, "
        f"p50 {result['p50_ms']} ms, p95 {result['p95_ms']} ms per page, concurrency {args.concurrency})"
    )


if __name__ == "__main__":
    main()
