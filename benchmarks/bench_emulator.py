"""Emulator throughput, and what a full stream through the SDK costs in requests.

1. rows/s served on 1000-row pages of appointments from the local listener (raw httpx2, no SDK);
2. streams: every row of several lists through ``OpenDental`` on Local (read-ahead) and Remote (throttled, here
   with a tiny interval), counting at the transport every request sent: requests per stream against the
   ideal ceil(N / cap), pages asked past the end (wasted read-ahead), and the stream's rows/s.

The emulator runs in a subprocess (``python -m odapi_async.emulator``) so the client does not share its CPU
loop. Prints one JSON line per part, then a summary.

    python benchmarks/bench_emulator.py [--patients 1000] [--seconds 3] [--concurrency 1] [--no-streams]

``--capacity`` measures instead what the emulator can referee (issue 20): requests/s and the emulator's CPU per
request for 100-row ``patients`` pages over the throttled Remote listener, the load coming from a lean generator
in a child process (one raw HTTP/1.1 keep-alive connection per key, so the client's cost is not the emulator's):

- paced: N keys (offices), each sending its next page ``--interval`` (+ ``--margin``) after its previous one, as a
  sync worker at the limit does; reports refusals and achieved / limit at the emulator, as ``bench_sync_scale``;
- unthrottled (interval 0): C connections, each its own key, sending back to back: the most one process serves.

    python benchmarks/bench_emulator.py --capacity [--keys 200 500 1000] [--interval 1] [--connections 50]
        [--emulators 1] [--patients 1500] [--seconds 15]

``--emulators K`` splits the keys over K emulator processes (``--bench-keys-from``), their CPU added up.
One JSON line per run on stdout, a readable line on stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import math
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

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


# -- capacity: the emulator's own requests/s on 100-row pages, loaded by a lean generator in another process ----


def key_id(key: str) -> str:
    """How the emulator's stats name a customer key (``_server/stats.py``)."""
    return hashlib.sha256(key.encode()).hexdigest()[:10]


def cpu_seconds(pid: int) -> float:
    """CPU seconds (user + system) process ``pid`` has used so far (Linux /proc)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class RawConnection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection that sends prepared GETs and reads each answer by its Content-Length.

    What it costs a request is a few microseconds of parsing, so the emulator, not the client, sets the pace.
    """

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self._buf = bytearray()
        self._need = -1  # length of the whole answer (head + body) once its head is in
        self._status = 0
        self._answer: asyncio.Future[int] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self._buf += data
        if self._need < 0:
            end = self._buf.find(b"\r\n\r\n")
            if end < 0:
                return
            lines = bytes(self._buf[:end]).split(b"\r\n")
            self._status = int(lines[0].split(None, 2)[1])
            length = 0
            for line in lines[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            self._need = end + 4 + length
        if len(self._buf) >= self._need and self._answer is not None and not self._answer.done():
            del self._buf[: self._need]
            self._need = -1
            self._answer.set_result(self._status)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._answer is not None and not self._answer.done():
            self._answer.set_exception(ConnectionError("the emulator closed the connection"))

    async def get(self, request: bytes, timeout: float) -> int:
        """Send ``request`` and wait for its answer's status."""
        assert self.transport is not None
        self._answer = asyncio.get_running_loop().create_future()
        self.transport.write(request)
        return await asyncio.wait_for(self._answer, timeout)


def page_requests(endpoint: str, key: str, pages: int) -> list[bytes]:
    """The GETs of one office's ``patients`` pages (100 rows each on the Remote listener)."""
    url = urlsplit(endpoint)
    return [
        f"GET {url.path}/patients?Offset={page * 100} HTTP/1.1\r\nHost: {url.netloc}\r\n"
        f"Authorization: ODFHIR dev/{key}\r\nAccept: application/json\r\n\r\n".encode()
        for page in range(pages)
    ]


async def generate_load(spec: dict[str, Any]) -> dict[str, Any]:
    """Drive the emulators of ``spec`` from this process, one connection per key; measure both sides.

    Paced (``spec["interval"]`` > 0): each key sends its next page ``interval + margin`` after it sent the previous
    one (once that is answered), the keys' first requests spread evenly over one interval, as a sync worker at the
    limit does. Unpaced: each connection sends its next page as soon as the previous answer is in. The emulators'
    CPU (``/proc``) and this process's are read over the same window.
    """
    loop = asyncio.get_running_loop()
    conns: list[tuple[RawConnection, list[bytes], list[float]]] = []
    # per key, when each request went out (time.monotonic: the emulator's clock too, on one machine)
    sent: dict[str, list[float]] = {}
    for endpoint, keys in spec["targets"]:
        url = urlsplit(endpoint)
        for key in keys:
            _, conn = await loop.create_connection(RawConnection, url.hostname, url.port)
            conns.append((conn, page_requests(endpoint, key, spec["pages"]), sent.setdefault(key, [])))
    interval, seconds = spec["interval"], spec["seconds"]
    step = interval + spec["margin"] if interval > 0 else 0.0
    statuses: dict[int, int] = {}
    latencies: list[float] = []
    late: list[float] = []  # how long after its planned moment each paced request went out
    start = time.perf_counter() + 0.2
    stop = start + seconds

    async def drive(i: int, conn: RawConnection, requests: list[bytes], sends: list[float]) -> None:
        planned = start + (i * interval / len(conns) if interval > 0 else 0.0)
        n = i
        while True:
            now = time.perf_counter()
            if planned > now:
                await asyncio.sleep(planned - now)
                now = time.perf_counter()
            if now >= stop:
                return
            late.append(now - planned)
            sends.append(time.monotonic())
            status = await conn.get(requests[n % len(requests)], 30.0)
            latencies.append(time.perf_counter() - now)
            statuses[status] = statuses.get(status, 0) + 1
            n += 1
            planned = now + step

    await asyncio.sleep(start - time.perf_counter())
    emu_cpu = [cpu_seconds(pid) for pid in spec["pids"]]
    usage = resource.getrusage(resource.RUSAGE_SELF)
    await asyncio.gather(*(drive(i, *conn) for i, conn in enumerate(conns)))
    wall = time.perf_counter() - start  # from the first request to the last answer
    after = resource.getrusage(resource.RUSAGE_SELF)
    emu_cpu = [cpu_seconds(pid) - before for pid, before in zip(spec["pids"], emu_cpu, strict=True)]
    for conn, _, _ in conns:
        assert conn.transport is not None
        conn.transport.close()
    latencies.sort()
    late.sort()
    answers = len(latencies)
    mine = after.ru_utime - usage.ru_utime + after.ru_stime - usage.ru_stime
    return {
        "seconds": round(wall, 2),
        "answers": answers,
        "requests_per_s": round(answers / wall, 1),
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "emulator_cpu_share": [round(c / wall, 3) for c in emu_cpu],
        "emulator_cpu_ms_per_request": round(sum(emu_cpu) / answers * 1e3, 3) if answers else None,
        "generator_cpu_ms_per_request": round(mine / answers * 1e3, 3) if answers else None,
        "p50_ms": round(latencies[answers // 2] * 1e3, 2) if answers else None,
        "p99_ms": round(latencies[int(answers * 0.99)] * 1e3, 2) if answers else None,
        "max_ms": round(latencies[-1] * 1e3, 2) if answers else None,
        "sent_late_p99_ms": round(late[int(len(late) * 0.99)] * 1e3, 2) if interval > 0 and late else None,
        "sent": sent,
    }


def throttle_figures(
    stats: dict[str, Any], sent: dict[str, list[float]], interval: float
) -> tuple[int, list[float], list[float], list[float]]:
    """The Remote throttle's view of the keys in ``sent`` (from an emulator's ``/_emulator/stats``).

    Refusals, achieved / limit per key, gaps between accepted arrivals, and each request's stamp lag: its arrival
    stamp at the emulator minus when the generator sent it (one machine, one monotonic clock). A lag longer than
    the senders' margin is how a busy emulator counts a refusal the client did not cause.
    """
    refusals, ratios, gaps, lags = 0, [], [], []
    for key, sends in sent.items():
        listener = stats["keys"].get(key_id(key), {}).get("listeners", {}).get("remote")
        if listener is None:
            continue
        refusals += listener["violations"]
        accepted = listener["accepted_arrivals"]
        gaps += [b - a for a, b in zip(accepted, accepted[1:])]
        if len(accepted) > 1 and interval > 0:
            ratios.append((len(accepted) - 1) / (accepted[-1] - accepted[0]) * interval)
        if len(listener["arrivals"]) == len(sends):  # else the history was cut (more than it keeps)
            lags += [a - s for a, s in zip(listener["arrivals"], sends)]
    return refusals, ratios, gaps, lags


def run_capacity(
    keys: int, interval: float, seconds: float, patients: int, emulators: int, margin: float
) -> dict[str, Any]:
    """``keys`` offices (keys ``bench-0`` ...) over ``emulators`` emulator processes, loaded from a child process.

    ``interval`` is the full tier's throttle interval: > 0 paces every key at it (the emulator as a sync worker's
    referee); 0 leaves the keys unthrottled and sends back to back (the most the emulator can serve).
    """
    procs: list[subprocess.Popen[str]] = []
    targets: list[tuple[str, list[str]]] = []
    try:
        for j in range(emulators):
            first, last = j * keys // emulators, (j + 1) * keys // emulators
            extra = ("--bench-keys", str(last - first)) + (("--bench-keys-from", str(first)) if first else ())
            proc, endpoints = start_emulator(patients, interval=interval, extra=extra)
            procs.append(proc)
            targets.append((endpoints["remote"], [f"bench-{i}" for i in range(first, last)]))
        spec = {
            "targets": targets,
            "pids": [p.pid for p in procs],
            "interval": interval,
            "margin": margin,
            "seconds": seconds,
            "pages": max(patients // 100, 1),
        }
        child = subprocess.run(
            [sys.executable, __file__, "--load-spec", json.dumps(spec)],
            check=True,
            stdout=subprocess.PIPE,
            text=True,
            timeout=seconds + 300,
        )
        result: dict[str, Any] = json.loads(child.stdout.strip().splitlines()[-1])
        sent = result.pop("sent")
        refusals, ratios, gaps, lags = 0, [], [], []
        for endpoint, office_keys in targets:
            stats = httpx2.get(endpoint.rsplit("/api/v1", 1)[0] + "/_emulator/stats", timeout=60).json()
            figures = throttle_figures(stats, {k: sent[k] for k in office_keys}, interval)
            refusals += figures[0]
            ratios += figures[1]
            gaps += figures[2]
            lags += figures[3]
        lags.sort()
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=30)
    offered = keys / (interval + margin) if interval > 0 else None
    return {
        "benchmark": "emulator_capacity",
        "keys": keys,
        "interval": interval,
        "emulators": emulators,
        "patients": patients,
        "page_rows": 100,
        "load_before": round(os.getloadavg()[0], 2),
        "offered_per_s": round(offered, 1) if offered else None,
        **result,
        "refusals": refusals,
        "achieved_over_limit_mean": round(sum(ratios) / len(ratios), 3) if ratios else None,
        "achieved_over_limit_min": round(min(ratios), 3) if ratios else None,
        "smallest_accepted_gap": round(min(gaps), 4) if gaps else None,
        "stamp_lag_p50_ms": round(lags[len(lags) // 2] * 1e3, 2) if lags else None,
        "stamp_lag_p99_ms": round(lags[int(len(lags) * 0.99)] * 1e3, 2) if lags else None,
        "stamp_lag_max_ms": round(lags[-1] * 1e3, 2) if lags else None,
    }


def capacity_line(r: dict[str, Any]) -> str:
    """One readable line of a capacity run."""
    how = (
        f"{r['keys']} keys paced at {r['interval']:g} s (offered {r['offered_per_s']}/s)"
        if r["interval"] > 0
        else f"{r['keys']} connections back to back, unthrottled"
    )
    shares = "+".join(f"{s:.0%}" for s in r["emulator_cpu_share"])
    line = (
        f"capacity [{how}, {r['emulators']} emulator(s)]: {r['requests_per_s']:,} requests/s of 100 rows, "
        f"emulator {r['emulator_cpu_ms_per_request']} ms CPU a request ({shares} of a core), generator "
        f"{r['generator_cpu_ms_per_request']} ms; p50 {r['p50_ms']} ms, p99 {r['p99_ms']} ms; statuses "
        f"{r['statuses']}"
    )
    if r["interval"] > 0:
        line += (
            f"; achieved/limit {r['achieved_over_limit_mean']} (min {r['achieved_over_limit_min']}), "
            f"{r['refusals']} refusals, smallest accepted gap {r['smallest_accepted_gap']} s; stamp lag p50 "
            f"{r['stamp_lag_p50_ms']} ms, p99 {r['stamp_lag_p99_ms']} ms, max {r['stamp_lag_max_ms']} ms"
        )
    return line + f"; load {r['load_before']}"


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
    ap.add_argument(
        "--capacity",
        action="store_true",
        help="instead: the emulator's requests/s on 100-row patients pages over Remote (see the docstring)",
    )
    ap.add_argument(
        "--keys", type=int, nargs="+", default=[200, 500, 1000], help="capacity: paced keys (offices) per run"
    )
    ap.add_argument("--interval", type=float, default=1.0, help="capacity: the interval keys are paced at")
    ap.add_argument(
        "--connections", type=int, nargs="*", default=[50], help="capacity: unthrottled back-to-back runs"
    )
    ap.add_argument("--emulators", type=int, default=1, help="capacity: emulator processes sharing the keys")
    ap.add_argument(
        "--margin", type=float, default=0.005, help="capacity: seconds a paced key adds to the interval"
    )
    ap.add_argument("--load-spec", help=argparse.SUPPRESS)  # the load generator child: its spec as JSON
    args = ap.parse_args()
    if args.load_spec is not None:
        print(json.dumps(asyncio.run(generate_load(json.loads(args.load_spec)))))
        return
    if args.capacity:
        patients = args.patients if args.patients != 1000 else 1500  # 15 pages, as bench_sync_scale
        seconds = args.seconds if args.seconds != 3.0 else 15.0
        runs = [(n, args.interval) for n in args.keys] + [(c, 0.0) for c in args.connections]
        for n, interval in runs:
            r = run_capacity(n, interval, seconds, patients, args.emulators, args.margin)
            print(json.dumps(r), flush=True)
            print(capacity_line(r), file=sys.stderr, flush=True)
        return
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
