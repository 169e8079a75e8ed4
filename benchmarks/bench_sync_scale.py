"""The main job at scale: one process syncs the ``patients`` of N offices over the throttled Remote listener.

Measured as a sync worker's user would (issue 20): N offices, each its own customer key, sync ``patients`` into
one SQLite file in one process (``sync_offices``, with the live progress table of ``odapi sync`` drawn to a
terminal that is ``/dev/null``), the emulator in its own process at the full-tier interval T (1 s by default, the
real one). Each N runs in a fresh child process (so its CPU time and peak memory are its own) against a fresh
emulator. Reported per N:

- achieved / limit: each office's accepted request rate at the emulator, ``(n - 1) / (last - first)``, times T
  (the mean and the lowest office); the limit is one request per T per key;
- refusals at the emulator (429s: arrivals sooner than T after the key's previous accepted one);
- client CPU (user + system, ``getrusage`` of the client process over the whole run: session start, throttle,
  HTTP, decode, storage, progress) per request and per row; offices per core = T / (CPU per request);
- peak RSS, and RSS per office: (peak - the RSS before the run) / N;
- the emulator's CPU over the run (a busy emulator is a biased referee) and the load average before the run.

    python benchmarks/bench_sync_scale.py [--offices 10 100 200] [--patients 1500] [--interval 1.0]
        [--no-display] [--profile DIR] [--emulators K]

``--emulators K`` starts K emulator processes and splits the offices over them (office i on emulator i * K // N,
each with its own range of keys, ``--bench-keys-from``); the throttle figures come from each office's own
emulator, and the emulator CPU share is their sum (``emulator_cpu_share_each`` lists them).

``--profile DIR`` runs the client under cProfile and writes ``DIR/scale-N.prof`` (read it with ``pstats``).
Prints one JSON line per N, then a summary table.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DEV = "dev"
#: The live table's terminal.
SINK = open(os.devnull, "w")  # noqa: SIM115  (the process's lifetime)


def key_id(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:10]


def rss_mb() -> float:
    """The process's resident set now (Linux /proc)."""
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 1e6


def cpu_of(pid: int) -> float:
    """CPU seconds (user + system) process ``pid`` has used so far (Linux /proc)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_emulator(
    offices: int, patients: int, interval: float, first: int = 0
) -> tuple[subprocess.Popen[str], dict[str, str]]:
    """An emulator process serving the keys ``bench-{first}`` .. ``bench-{first + offices - 1}``."""
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    cmd = [sys.executable, "-m", "odapi_async.emulator", "--patients", str(patients),
           "--port-local", "0", "--port-service", "0", "--port-remote", "0",
           "--interval", f"full={interval}", "--bench-keys", str(offices), "--print-endpoints-json"]  # fmt: skip
    if first:
        cmd += ["--bench-keys-from", str(first)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=env, cwd=ROOT)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        proc.kill()
        raise SystemExit("the emulator did not start")
    return proc, json.loads(line)


def emulator_of(i: int, offices: int, emulators: int) -> int:
    """Which of the emulators serves office ``i``: contiguous blocks, as even as they go."""
    return i * emulators // offices


async def sync_all(
    offices: int, endpoints: list[dict[str, str]], interval: float, db: Path, display: bool
) -> Any:
    sink = SINK
    import anyio
    from rich.console import Console

    from odapi_async import OpenDental
    from odapi_async.cli._report import LiveProgress
    from odapi_async.sync import OfficeConfig, OfficeProgress, SyncStore, sync_offices, sync_specs

    def office(i: int) -> OfficeConfig:
        remote = {"remote": endpoints[emulator_of(i, offices, len(endpoints))]["remote"]}

        def session() -> OpenDental:
            return OpenDental(DEV, f"bench-{i}", modes=("remote",), endpoints=remote, tier="full",
                              intervals={"full": interval})  # fmt: skip

        return OfficeConfig(f"office-{i}", session)

    configs = [office(i) for i in range(offices)]
    tracked = {o.name: OfficeProgress(o.name) for o in configs}
    with SyncStore(db) as store:
        # What `odapi sync` draws on a terminal (cli/sync.py run_sync), to a terminal that is /dev/null.
        console = Console(file=sink, force_terminal=True, width=120, height=50)
        live = LiveProgress(console, list(tracked.values()), quiet=not display)
        stop = anyio.Event()
        async with anyio.create_task_group() as tg:
            tg.start_soon(live.run, stop)
            try:
                done = await sync_offices(configs, store, sync_specs(["patients"]), progress=tracked)
            finally:
                stop.set()
    return done


def run_one(
    offices: int, patients: int, interval: float, display: bool, profile: Path | None, emulators: int = 1
) -> dict[str, Any]:
    """One N in this process (the child): start its emulator, sync, measure."""
    import httpx2

    import odapi_async.cli._report
    import odapi_async.sync  # noqa: F401  (imported before the baseline: imports are not the run's cost)

    emulators = max(1, min(emulators, offices))
    procs: list[subprocess.Popen[str]] = []
    endpoints: list[dict[str, str]] = []
    try:
        for j in range(emulators):
            first = min(i for i in range(offices) if emulator_of(i, offices, emulators) == j)
            count = sum(1 for i in range(offices) if emulator_of(i, offices, emulators) == j)
            proc, ends = start_emulator(count, patients, interval, first)
            procs.append(proc)
            endpoints.append(ends)
        with tempfile.TemporaryDirectory() as tmp:
            load = os.getloadavg()
            rss_before = rss_mb()
            emu_cpus = [cpu_of(p.pid) for p in procs]
            usage = resource.getrusage(resource.RUSAGE_SELF)
            started = time.monotonic()
            if profile is not None:
                import cProfile

                profiler = cProfile.Profile()
                done = profiler.runcall(
                    asyncio.run, sync_all(offices, endpoints, interval, Path(tmp) / "s.db", display)
                )
                profile.mkdir(parents=True, exist_ok=True)
                profiler.dump_stats(profile / f"scale-{offices}.prof")
            else:
                done = asyncio.run(sync_all(offices, endpoints, interval, Path(tmp) / "s.db", display))
            elapsed = time.monotonic() - started
            after = resource.getrusage(resource.RUSAGE_SELF)
            emu_cpus = [cpu_of(p.pid) - c for p, c in zip(procs, emu_cpus, strict=True)]
            peak_mb = after.ru_maxrss / 1e3  # kB on Linux
            stats = [
                httpx2.get(e["remote"].rsplit("/api/v1", 1)[0] + "/_emulator/stats", timeout=60).json()
                for e in endpoints
            ]
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.communicate(timeout=30)
    cpu = (after.ru_utime - usage.ru_utime) + (after.ru_stime - usage.ru_stime)
    errors = [o.error for o in done if o.error] + [r.error for o in done for r in o.results if r.error]
    rows = sum(o.rows for o in done)
    ratios, refusals, requests, gaps = [], 0, 0, []
    for i in range(offices):
        own = stats[emulator_of(i, offices, emulators)]  # each office's figures from its own emulator
        listener = own["keys"].get(key_id(f"bench-{i}"), {}).get("listeners", {}).get("remote")
        if listener is None:
            continue
        refusals += listener["violations"]
        requests += listener["requests"]
        accepted, arrivals = listener["accepted_arrivals"], listener["arrivals"]
        gaps += [b - a for a, b in zip(arrivals, arrivals[1:])]
        if len(accepted) > 1:
            ratios.append((len(accepted) - 1) / (accepted[-1] - accepted[0]) * interval)
    return {
        "bench": "sync_scale",
        "offices": offices,
        "patients": patients,
        "interval": interval,
        "display": display,
        "profiled": profile is not None,
        "load_before": [round(x, 2) for x in load],
        "seconds": round(elapsed, 2),
        "rows": rows,
        "requests": requests,
        "errors": errors[:5],
        "achieved_over_limit_mean": round(sum(ratios) / len(ratios), 3) if ratios else None,
        "achieved_over_limit_min": round(min(ratios), 3) if ratios else None,
        "refusals": refusals,
        "smallest_gap_at_emulator": round(min(gaps), 4) if gaps else None,
        "client_cpu_seconds": round(cpu, 2),
        "cpu_ms_per_request": round(cpu / requests * 1e3, 2) if requests else None,
        "cpu_us_per_row": round(cpu / rows * 1e6, 1) if rows else None,
        "offices_per_core": round(interval / (cpu / requests)) if requests and cpu else None,
        "rss_before_mb": round(rss_before, 1),
        "peak_rss_mb": round(peak_mb, 1),
        "rss_mb_per_office": round((peak_mb - rss_before) / offices, 3),
        "emulator_cpu_share": round(sum(emu_cpus) / elapsed, 2),  # all emulators together
        "emulators": emulators,
        "emulator_cpu_share_each": [round(c / elapsed, 2) for c in emu_cpus],
    }


def summary(results: list[dict[str, Any]]) -> str:
    lines = ["offices | achieved/limit mean (min) | refusals | CPU/request | CPU/row | offices/core | "
             "peak RSS | RSS/office | emulator CPU | load before"]  # fmt: skip
    for r in results:
        lines.append(
            f"{r['offices']} | {r['achieved_over_limit_mean']} ({r['achieved_over_limit_min']}) | {r['refusals']} | "
            f"{r['cpu_ms_per_request']} ms | {r['cpu_us_per_row']} us | {r['offices_per_core']} | "
            f"{r['peak_rss_mb']} MB | {r['rss_mb_per_office']} MB | {r['emulator_cpu_share']:.0%} | "
            f"{r['load_before'][0]}" + (f"  ERRORS {r['errors']}" if r["errors"] else "")
        )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--offices", type=int, nargs="+", default=[10, 100, 200])
    ap.add_argument("--patients", type=int, default=1500, help="patients per office (100 a page)")
    ap.add_argument(
        "--interval", type=float, default=1.0, help="the full tier's interval T (the real one: 1)"
    )
    ap.add_argument("--no-display", action="store_true", help="no live progress table")
    ap.add_argument("--profile", type=Path, metavar="DIR", help="cProfile the client; DIR/scale-N.prof")
    ap.add_argument(
        "--emulators",
        type=int,
        default=1,
        metavar="K",
        help="emulator processes, the offices' keys split over them (default 1)",
    )
    ap.add_argument("--one", type=int, help=argparse.SUPPRESS)  # the child: run this N and print its JSON
    args = ap.parse_args()
    if args.one is not None:
        result = run_one(
            args.one, args.patients, args.interval, not args.no_display, args.profile, args.emulators
        )
        print(json.dumps(result))
        return
    results = []
    for n in args.offices:
        cmd = [sys.executable, __file__, "--one", str(n), "--patients", str(args.patients),
               "--interval", str(args.interval)]  # fmt: skip
        if args.no_display:
            cmd.append("--no-display")
        if args.emulators != 1:
            cmd += ["--emulators", str(args.emulators)]
        if args.profile:
            cmd += ["--profile", str(args.profile)]
        out = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True, timeout=1800).stdout
        result = json.loads(out.strip().splitlines()[-1])
        print(json.dumps(result), flush=True)
        results.append(result)
    print(summary(results), file=sys.stderr)


if __name__ == "__main__":
    main()
