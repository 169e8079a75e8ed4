"""P6: N worker processes share one customer key through RedisThrottle; the emulator runs in its own process.

    python benchmarks/bench_redis.py [--workers N] [--interval T] [--duration S] [--tasks K]

Starts its own ``redis-server`` (a free loopback port, persistence off) and the emulator (``python -m
odapi_async.emulator``), then N worker processes (this script with ``--worker``), each sending requests on the
same key through an ``OpenDental`` session with ``throttle=RedisThrottle(...)`` from K tasks, for S seconds.
The emulator counts violations at arrival. Reported: violations, achieved rate / allowed rate (1 / T), also
past each worker's first request (steady), Redis round trips per request (the acquire with its BLPOP, the
release, plus one per lease TTL waited and one per NOSCRIPT), and the latency of one script call seen by the
worker (median, p99: a round trip on loopback plus the script), and the gaps between arrivals.
Prints one JSON line, then a one-line summary.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

from bench_throttle import EmulatorProcess, min_gap, rate_of, remote_stats

from odapi_async import OpenDental, RedisThrottle

KEY = "shared"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def redis_server() -> Any:
    if shutil.which("redis-server") is None:
        raise SystemExit("redis-server is not installed (Debian: apt-get install redis-server)")
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        proc = subprocess.Popen(
            ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
            + ["--dir", tmp],
            stdout=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 10
            while True:
                with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError("redis-server did not start")
                time.sleep(0.01)
            yield f"redis://127.0.0.1:{port}/0"
        finally:
            proc.terminate()
            proc.wait(10)


async def worker(
    url: str, endpoint: str, interval: float, duration: float, tasks: int, margin: float
) -> None:
    throttle = RedisThrottle(url)
    baseline = url == "none"  # the in-process throttle alone (one worker): the SDK's own cost, for comparison
    od = OpenDental(
        "dev", KEY, endpoints={"remote": endpoint}, modes=("remote",), tier="full",
        intervals={"full": interval}, throttle=None if baseline else throttle, max_retries=3,
        safety_margin=margin if margin >= 0 else None,
    )  # fmt: skip
    async with od:
        print("ready", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        deadline = time.monotonic() + duration

        async def one() -> None:
            while time.monotonic() < deadline:
                await od.request("GET", "/patients", params={"Limit": 1})

        with contextlib.suppress(asyncio.TimeoutError):
            # Cancelled at the deadline: a turn still queued consumes nothing.
            await asyncio.wait_for(asyncio.gather(*[one() for _ in range(tasks)]), duration + interval * 4)
    if baseline:
        print(json.dumps({"requests": sum(st.requests for st in od.throttle_stats().values()), "calls": 0, "busy": 0,
                          "latencies": []}))  # fmt: skip
        return
    (c,) = throttle.redis_stats().values()
    print(
        json.dumps({"requests": c.requests, "calls": c.calls, "busy": c.busy, "latencies": list(c.latencies)})
    )


async def p6(
    workers: int, interval: float, duration: float, tasks: int, margin: float, baseline: bool = False
) -> dict[str, Any]:
    with redis_server() as url:
        async with EmulatorProcess(customer_keys={KEY: "full"}, intervals={"full": interval}) as emu:
            env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
            args = [
                "--worker",
                "none" if baseline else url,
                emu.endpoints["remote"],
                str(interval),
                str(duration),
                str(tasks),
                str(margin),
            ]
            procs = [
                await asyncio.create_subprocess_exec(
                    sys.executable,
                    __file__,
                    *args,
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    env=env,
                )
                for _ in range(workers)
            ]
            for p in procs:
                assert p.stdout is not None
                assert (await asyncio.wait_for(p.stdout.readline(), 60)).strip() == b"ready"
            for p in procs:
                assert p.stdin is not None
                p.stdin.write(b"go\n")
            outs = [await asyncio.wait_for(p.communicate(), duration + 60) for p in procs]
            for p, (out, err) in zip(procs, outs):
                if p.returncode != 0 or not out.strip():
                    raise RuntimeError(f"a worker failed ({p.returncode}): {err.decode()[-3000:]}")
            results = [json.loads(out.decode().splitlines()[-1]) for out, _ in outs]
            snap = await emu.stats()
    st = remote_stats(snap, KEY)
    acc = st["accepted_arrivals"]
    requests = sum(r["requests"] for r in results)
    calls = sum(r["calls"] for r in results)
    latencies = sorted(x for r in results for x in r["latencies"])
    rate = rate_of(acc)
    return {
        "bench": "p6",
        "workers": workers,
        "tasks_per_worker": tasks,
        "interval": interval,
        "duration": duration,
        "requests_at_emulator": st["requests"],
        "violations": st["violations"],
        "rate": rate,
        "allowed_rate": 1 / interval,
        "ratio_to_allowed": rate * interval,
        # Without each worker's first request (a new process connects, and the margin starts cautious).
        "ratio_steady": rate_of(acc[2 * workers :]) * interval,
        "min_gap": min_gap(acc),
        "mean_gap": statistics.fmean(b - a for a, b in zip(acc, acc[1:])) if len(acc) > 1 else None,
        "gap_ms_quantiles": _quantiles([(b - a) * 1000 for a, b in zip(acc, acc[1:])]),
        "safety_margin": margin if margin >= 0 else "measured",
        "per_worker_requests": [r["requests"] for r in results],
        "redis_calls_per_request": calls / max(requests, 1),
        "busy_per_request": sum(r["busy"] for r in results) / max(requests, 1),
        "script_ms_median": statistics.median(latencies) * 1000 if latencies else None,
        "script_ms_p99": latencies[int(len(latencies) * 0.99)] * 1000 if latencies else None,
    }


def _quantiles(gaps: list[float]) -> dict[str, float]:
    """p10, p50, p90, p99 and max of the gaps between accepted arrivals (ms)."""
    if not gaps:
        return {}
    gaps = sorted(gaps)
    pick = {"p10": 0.1, "p50": 0.5, "p90": 0.9, "p99": 0.99}
    found = {name: round(gaps[min(int(len(gaps) * q), len(gaps) - 1)], 2) for name, q in pick.items()}
    return {**found, "max": round(gaps[-1], 2)}


def main() -> None:
    if sys.argv[1:2] == ["--worker"]:
        url, endpoint, interval, duration, tasks, margin = sys.argv[2:]
        asyncio.run(worker(url, endpoint, float(interval), float(duration), int(tasks), float(margin)))
        return
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workers", type=int, default=4)
    p.add_argument("--interval", type=float, default=0.1)
    p.add_argument("--duration", type=float, default=10.0)
    p.add_argument("--tasks", type=int, default=4)
    p.add_argument("--baseline", action="store_true", help="one process, the in-process throttle alone")
    p.add_argument("--safety-margin", type=float, default=-1.0, help="fixed margin (default: measured)")
    a = p.parse_args()
    if a.baseline:
        a.tasks, a.workers = a.tasks * a.workers, 1
    result = asyncio.run(p6(a.workers, a.interval, a.duration, a.tasks, a.safety_margin, a.baseline))
    result["bench"] = "p6-baseline" if a.baseline else "p6"
    print(json.dumps(result))
    print(
        f"P6 {a.workers} processes x 1 key, T = {a.interval:g} s: {result['violations']} violations, "
        f"{result['ratio_to_allowed']:.3f} of the allowed rate ({result['ratio_steady']:.3f} past the first "
        f"{2 * a.workers} requests), {result['redis_calls_per_request']:.2f} Redis "
        f"calls per request, script {result['script_ms_median'] or 0:.2f} ms median / "
        f"{result['script_ms_p99'] or 0:.2f} ms p99"
        + (" (BASELINE: one process, no Redis)" if a.baseline else "")
    )


if __name__ == "__main__":
    main()
