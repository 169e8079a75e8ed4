"""Emulator throughput, and what a full stream through the SDK costs in requests.

1. rows/s served on 1000-row pages of appointments from the local listener (raw httpx2, no SDK);
2. streams: every row of several lists through ``OpenDental`` on Local (read-ahead) and Remote (throttled, here
   with a tiny interval), counting at the transport every request sent: requests per stream against the
   ideal ceil(N / cap), pages asked past the end (wasted read-ahead), and the stream's rows/s.

The emulator runs in a subprocess (``python -m odapi_async.emulator``) so the client does not share its CPU
loop. Prints one JSON line per part, then a summary.

    python benchmarks/bench_emulator.py [--patients 1000] [--seconds 3] [--concurrency 1] [--no-streams]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx2
import msgspec

ROOT = Path(__file__).resolve().parent.parent
HEADERS = {"Authorization": "ODFHIR dev/cust-full", "Content-Type": "application/json"}
#: The Remote listener's interval for the streams part (the real 1 s would make it minutes long).
REMOTE_INTERVAL = 0.002
STREAM_LISTS = (
    "appointments",
    "patients",
    "procedurelogs",
    "claimprocs",
    "commlogs",
    "payments",
    "recalls",
    "claims",
)


def start_emulator(
    patients: int, *, interval: float = REMOTE_INTERVAL, extra: tuple[str, ...] = ()
) -> tuple[subprocess.Popen[str], dict[str, str]]:
    """``python -m odapi_async.emulator`` in a child process (other benchmarks use it too); its endpoints."""
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
        "--interval",
        f"full={interval}",
        "--print-endpoints-json",
        *extra,
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


class CountingTransport(httpx2.AsyncBaseTransport):
    """Records the path, Offset and Limit of every request that reaches the transport (i.e. is sent)."""

    def __init__(self, max_connections: int | None) -> None:
        self.inner = httpx2.AsyncHTTPTransport(limits=httpx2.Limits(max_connections=max_connections))
        self.sent: list[tuple[int, int]] = []  # (Offset, status): status 0 until the answer arrives
        self.refused = 0  # throttled (429) answers: retried, not part of the stream's cost

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        self.sent.append((int(request.url.params.get("Offset", 0)), 0))
        response = await self.inner.handle_async_request(request)
        if response.status_code == 429:
            self.refused += 1
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


async def run_streams(endpoints: dict[str, str], repeats: int, modes: list[str]) -> dict[str, object]:
    """Stream every list on Local and Remote; count requests sent and pages asked past the end."""
    from odapi_async import Hub, OpenDental

    out: dict[str, object] = {}
    for mode, cap in (("local", 1000), ("remote", 100)):
        if mode not in modes:
            continue
        transports: list[CountingTransport] = []

        def factory(max_connections: int | None) -> CountingTransport:
            transports.append(CountingTransport(max_connections))
            return transports[-1]

        od = OpenDental(
            "dev",
            "cust-full",
            endpoints=endpoints,
            modes=(mode,),  # type: ignore[arg-type]
            tier="full",
            intervals={"full": REMOTE_INTERVAL},
            hub=Hub(transport_factory=factory),
        )
        per_list = {}
        async with od:
            for name in STREAM_LISTS:
                best = math.inf
                for _ in range(repeats if name == "appointments" and mode == "local" else 1):
                    before = sum(len(t.sent) for t in transports)
                    refused_before = sum(t.refused for t in transports)
                    t0 = time.perf_counter()
                    rows = await getattr(od, name).list().collect()
                    best = min(best, time.perf_counter() - t0)
                    sent = [r for t in transports for r in t.sent][before:]
                    refused = sum(t.refused for t in transports) - refused_before
                n = len(rows)
                ideal = max(math.ceil(n / cap), 1) + (1 if n % 100 == 0 else 0)
                per_list[name] = {
                    "rows": n,
                    "requests": len(sent) - refused,  # answered requests (a throttled one is sent again)
                    "ideal_requests": ideal,  # ceil(N / cap), +1 when the last page's length could be a cap
                    "with_overlap": max(math.ceil((n - 1) / (cap - 1)), 1),  # one row of overlap a page
                    "refused_429": refused,
                    "past_end": sum(1 for offset, _ in sent if offset >= n and n),
                    "rows_per_s": round(n / best) if best else 0,
                }
        out[mode] = per_list
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--patients", type=int, default=1000)
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--concurrency", type=int, default=1)
    ap.add_argument(
        "--repeats", type=int, default=3, help="runs of the local appointments stream (best kept)"
    )
    ap.add_argument("--no-streams", dest="streams", action="store_false")
    ap.add_argument("--stream-modes", default="local,remote", help="modes of the streams part")
    args = ap.parse_args()
    proc, endpoints = start_emulator(args.patients)
    try:
        result = asyncio.run(run(endpoints["local"], args.seconds, args.concurrency))
        streams = (
            asyncio.run(run_streams(endpoints, args.repeats, args.stream_modes.split(",")))
            if args.streams
            else None
        )
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    out = {"benchmark": "emulator_rows_per_s", "listener": "local", "page_size": 1000, **vars(args), **result}
    print(json.dumps(out))
    print(
        f"emulator: {result['rows_per_s']:,} rows/s on 1000-row pages (local listener, "
        f"p50 {result['p50_ms']} ms, p95 {result['p95_ms']} ms per page, concurrency {args.concurrency})"
    )
    if streams is None:
        return
    print(json.dumps({"benchmark": "emulator_streams", "patients": args.patients, **streams}))
    for mode, lists in streams.items():
        assert isinstance(lists, dict)
        total = {
            k: sum(v[k] for v in lists.values()) for k in ("rows", "requests", "ideal_requests", "past_end")
        }
        appts = lists["appointments"]
        print(
            f"streams [{mode}]: {len(lists)} lists, {total['rows']:,} rows in {total['requests']} requests "
            f"(ideal {total['ideal_requests']}), {total['past_end']} asked past the end; appointments "
            f"{appts['rows']:,} rows in {appts['requests']} requests (ideal {appts['ideal_requests']}, "
            f"{appts['past_end']} past the end) at {appts['rows_per_s']:,} rows/s"
        )


if __name__ == "__main__":
    main()
