"""P7: the sync-worker pattern — ``asyncio.run`` per job, a new session per job, one Remote key.

    python benchmarks/bench_sync_worker.py [--runs N] [--requests R] [--interval T]

The emulator runs in its own process with the jittered network of P1 (21..39 ms each way; see
``bench_throttle.py``). Each of N runs starts a new event loop and a new ``OpenDental`` session (tier "auto")
and makes R sequential requests. Reported: violations at the emulator (target 0), throttle answers, and the
achieved request rate over all runs against the allowed ``1 / T`` and against the jitter limit ``1 / (T + J)``
(target >= 0.95 of the jitter limit). Prints one JSON line, then a one-line summary.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import threading
import time
from typing import Any

from bench_throttle import JITTER, LATENCY, EmulatorProcess, jittery_transport, rate_of, remote_stats

from odapi_async import Hub, OpenDental

DEV = "dev"


def p7(runs: int, requests: int, interval: float) -> dict[str, Any]:
    # The emulator process is driven from a helper thread's loop; the worker's runs own the main thread.
    box: dict[str, Any] = {}
    ready, done = threading.Event(), threading.Event()

    def serve() -> None:
        async def main() -> None:
            async with EmulatorProcess(
                customer_keys={"worker": "full"},
                intervals={"full": interval},
                faults={"remote": {"latency": LATENCY, "jitter": JITTER}},
            ) as emu:
                box["endpoints"] = emu.endpoints
                ready.set()
                await asyncio.to_thread(done.wait)
                box["snapshot"] = await emu.stats()

        asyncio.run(main())

    server = threading.Thread(target=serve)
    server.start()
    if not ready.wait(90):
        raise RuntimeError("the emulator did not start")
    endpoints = box["endpoints"]
    hub = Hub(transport_factory=lambda n: jittery_transport(n or 1, LATENCY, LATENCY + JITTER))
    answers = 0

    async def job() -> None:
        nonlocal answers
        async with OpenDental(
            DEV, "worker", endpoints=endpoints, modes=("remote",), intervals={"full": interval}, hub=hub
        ) as od:
            for _ in range(requests):
                await od.request("GET", "/patients", params={"Limit": 1})

    started = time.monotonic()
    for _ in range(runs):
        asyncio.run(job())
    elapsed = time.monotonic() - started
    stats = next(iter(hub.throttle.stats().values()))
    done.set()
    server.join(60)
    st = remote_stats(box["snapshot"], "worker")
    acc = st["accepted_arrivals"]
    rate = rate_of(acc)
    return {
        "bench": "p7",
        "runs": runs,
        "requests_per_run": requests,
        "interval": interval,
        "latency_ms": [LATENCY * 1000, (LATENCY + JITTER) * 1000],
        "requests": st["requests"],
        "violations": st["violations"],
        "throttle_answers": stats.throttle_answers,
        "tier_after": stats.tier,
        "elapsed": elapsed,
        "rate": rate,
        "ratio_to_allowed": rate * interval,
        "ratio_to_jitter_limit": rate * (interval + JITTER),
    }


def summary(r: dict[str, Any]) -> str:
    return (
        f"P7 {r['runs']} runs x {r['requests_per_run']} requests, T={r['interval']}s: {r['requests']} requests, "
        f"{r['violations']} violations, {r['throttle_answers']} throttle answers, tier {r['tier_after']}; "
        f"rate {r['rate']:.3f}/s = {r['ratio_to_allowed']:.3f} of 1/T, {r['ratio_to_jitter_limit']:.3f} of 1/(T+J)"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--requests", type=int, default=4)
    ap.add_argument("--interval", type=float, default=0.2)
    args = ap.parse_args()
    result = p7(args.runs, args.requests, args.interval)
    print(json.dumps(result))
    print(summary(result), file=sys.stderr)


if __name__ == "__main__":
    main()
