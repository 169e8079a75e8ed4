"""Streaming a large list, side by side: odapi, a bare httpx2 + msgspec loop, and ``opendental-sdk``.

    python benchmarks/bench_paging.py [--patients 10500] [--reps 3] [--rss-rows 1000000] [--rss-source fake]

The emulator runs in its own process (``python -m odapi_async.emulator``), so no client shares its CPU.
In one run:

1. **Throughput**: every contender streams the whole ``appointments`` list (>= 50 000 rows) from the Local
   listener, 1000-row pages; the contenders take turns, round after round (``--reps``), and the best round
   of each counts. Contenders:

   - ``odapi ra=3`` / ``odapi ra=0``: ``async for row in od.appointments.list()`` (read-ahead on, the default,
     and off);
   - ``bare`` / ``bare ra=3``: an ``httpx2.AsyncClient`` loop over ``Offset``/``Limit=1000`` as the API docs
     describe, each page decoded by msgspec into a Struct with the same fields and types as odapi's
     ``Appointment`` (``strict=False``, as string booleans need), without and with 3 pages fetched ahead, in
     order;
   - ``opendental-sdk``: its ``appointments.list(offset=, limit=1000)`` (requests + pydantic), paged by hand:
     its ``get_all()`` steps Offset by 100 while Local serves 1000-row pages, so it returns wrong rows.

2. **Time to first row** of a fresh session (its own connection pool, ``Hub()``) per mode: a default
   three-mode cascade whose earlier modes point at a closed port (connection refused), and a one-mode session;
   the remote listener has a short interval. The bare loop's first page is the yardstick.

3. **Peak RSS** streaming ``--rss-rows`` rows, in a child process per contender: ``VmHWM`` minus ``VmRSS``
   after imports. ``--rss-source fake`` (default) serves the rows of one real 1000-row page of the emulator again and again
   from a tiny HTTP server in another process (the emulator would take ~25 s for 10^6 rows);
   ``--rss-source emulator`` streams the emulator's list repeatedly instead.

Prints one JSON line, then a summary. Targets (issue 10): odapi ra=3 >= 1.0x bare ra=3, >= 5x the peer; peak
RSS <= 30 MB above the baseline.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import functools
import gc
import json
import logging
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx2
import msgspec

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from odapi_async import Hub, OpenDental  # noqa: E402
from odapi_async.resources import Appointment  # noqa: E402

DEV, CUSTOMER = "dev", "cust-full"
HEADERS = {"Authorization": f"ODFHIR {DEV}/{CUSTOMER}", "Content-Type": "application/json"}
PAGE = 1000
AHEAD = 3
MAX_ROWS = 50_000_000  # a bound on the hand-written loops, should a server never end a list
REMOTE_INTERVAL = 0.05  # the emulator's (and the sessions') interval for the full tier on Remote

# A Struct a user would write for these rows: odapi's fields and types, no wire rules of ours.
BareAppointment = msgspec.defstruct(
    "BareAppointment",
    [(f.name, f.type, f.default) for f in msgspec.structs.fields(Appointment)],
    kw_only=True,
    gc=False,
)
BARE_DECODER = msgspec.json.Decoder(list[BareAppointment], strict=False)  # type: ignore[valid-type]


# -- processes -------------------------------------------------------------------------------------


def child_env() -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))


def start_child(args: list[str]) -> tuple[subprocess.Popen[str], str]:
    """Start ``python args...`` and return it with the first line it prints (its endpoints)."""
    proc = subprocess.Popen(
        [sys.executable, *args], stdout=subprocess.PIPE, text=True, env=child_env(), cwd=ROOT
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        proc.kill()
        proc.wait(10)
        raise SystemExit(f"{args[:2]} did not start")
    return proc, line


def stop_child(proc: subprocess.Popen[str]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


def start_emulator(patients: int) -> tuple[subprocess.Popen[str], dict[str, str]]:
    proc, line = start_child(
        [
            "-m",
            "odapi_async.emulator",
            "--patients",
            str(patients),
            "--print-endpoints-json",
            "--port-local",
            "0",
            "--port-service",
            "0",
            "--port-remote",
            "0",
            "--interval",
            f"full={REMOTE_INTERVAL}",
            "--fractional-retry-after",
        ]  # fmt: skip
    )
    return proc, json.loads(line)


def cpu_of(pid: int) -> float:
    """CPU seconds a process has used (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def closed_port_url() -> str:
    """A loopback URL nothing listens on: a mode whose program is closed (connection refused at once)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/api/v1"


# -- the contenders --------------------------------------------------------------------------------


# Loading CA certificates for an SSL context takes 15 to 45 ms here, a tenth of a 50k-row stream: the streams
# share one context each side, as a long-lived program does (connections are still new in every stream:
# each runs in its own event loop). Time to first row makes a fresh one every time.
STREAM_HUB = Hub()
STREAM_SSL = httpx2.create_ssl_context()


def session(endpoints: dict[str, str], hub: Hub | None = None, **kw: Any) -> OpenDental:
    kw.setdefault("modes", ("local",))
    return OpenDental(
        DEV, CUSTOMER, endpoints=endpoints, hub=hub or Hub(), intervals={"full": REMOTE_INTERVAL}, **kw
    )


async def odapi_stream(base: str, read_ahead: int, want: int | None = None) -> tuple[int, int]:
    """Rows streamed and the last AptNum; ``want`` repeats the list until that many rows."""
    rows = last = 0
    async with session({"local": base}, STREAM_HUB, read_ahead=read_ahead) as od:
        while True:
            async for row in od.appointments.list():
                rows += 1
                last = row.AptNum
            if want is None or rows >= want:
                return rows, last


async def bare_stream(base: str, ahead: int, want: int | None = None) -> tuple[int, int]:
    """The docs' loop: GET Offset/Limit until a short page, each page decoded into a Struct.

    With ``ahead`` > 0, that many pages beyond the current one are in flight, and pages are read in order.
    """
    url = base + "/appointments"
    rows = last = 0
    async with httpx2.AsyncClient(timeout=60.0, verify=STREAM_SSL) as client:

        async def fetch(offset: int) -> list[Any]:
            r = await client.get(url, params={"Offset": offset, "Limit": PAGE}, headers=HEADERS)
            r.raise_for_status()
            return BARE_DECODER.decode(r.content)  # type: ignore[no-any-return]

        while True:
            queue: collections.deque[asyncio.Task[list[Any]]] = collections.deque()
            offset = 0
            try:
                while True:
                    while len(queue) < 1 + ahead:
                        queue.append(asyncio.ensure_future(fetch(offset)))
                        offset += PAGE
                    page = await queue.popleft()
                    for row in page:
                        rows += 1
                        last = row.AptNum
                    if len(page) < PAGE:
                        break
                    if rows > MAX_ROWS:
                        raise SystemExit(
                            f"bare loop: more than {MAX_ROWS} rows; the server never ends the list"
                        )
            finally:
                for task in queue:
                    task.cancel()
                await asyncio.gather(*queue, return_exceptions=True)
            if want is None or rows >= want:
                return rows, last


def peer_stream(base: str) -> tuple[int, int]:
    """``opendental-sdk`` (sync: requests + pydantic), paged with ``list(offset, limit)`` by hand."""
    from opendental import OpenDentalClient

    client = OpenDentalClient(DEV, CUSTOMER, base_url=base)
    rows = last = offset = 0
    try:
        while True:
            page = client.appointments.list(offset=offset, limit=PAGE)
            for row in page:
                rows += 1
                last = row.apt_num
            if len(page) < PAGE:
                return rows, last
            if rows > MAX_ROWS:
                raise SystemExit(f"opendental-sdk: more than {MAX_ROWS} rows; the server never ends the list")
            offset += len(page)
    finally:
        client.session.close()


def peer_available() -> str | None:
    """None if ``opendental-sdk`` imports, else why not."""
    try:
        with warnings.catch_warnings():  # its models use pydantic v1 config names; v2 warns at import
            warnings.simplefilter("ignore")
            import opendental  # noqa: F401
    except Exception as exc:  # the exact reason goes into the table
        return f"{type(exc).__name__}: {exc}"
    return None


# -- 1. throughput ---------------------------------------------------------------------------------


def throughput(
    base: str,
    reps: int,
    total: int,
    last_id: int,
    server_pid: int,
    requests_seen: Callable[[], int] | None = None,
) -> dict[str, Any]:
    """Best-of-``reps`` rows/s of each contender streaming the whole list; ``requests_seen`` (the server's
    request counter), if given, adds the requests one stream makes, counted in one more untimed round."""
    contenders: dict[str, Callable[[], tuple[int, int]]] = {
        "odapi ra=3": lambda: asyncio.run(odapi_stream(base, AHEAD)),
        "odapi ra=0": lambda: asyncio.run(odapi_stream(base, 0)),
        "bare ra=3": lambda: asyncio.run(bare_stream(base, AHEAD)),
        "bare": lambda: asyncio.run(bare_stream(base, 0)),
    }
    why_not = peer_available()
    if why_not is None:
        contenders["opendental-sdk"] = lambda: peer_stream(base)
    for run in contenders.values():  # warm-up: imports, the shared SSL contexts, pydantic's validators
        run()
    best: dict[str, dict[str, float]] = {}
    for _ in range(reps):
        for name, run in contenders.items():
            gc.collect()
            cpu0, server0, t0 = time.process_time(), cpu_of(server_pid), time.perf_counter()
            rows, last = run()
            wall = time.perf_counter() - t0
            cpu, server_cpu = time.process_time() - cpu0, cpu_of(server_pid) - server0
            if (rows, last) != (total, last_id):
                raise SystemExit(
                    f"{name}: got {rows} rows ending at {last}; expected {total} ending {last_id}"
                )
            if name not in best or wall < best[name]["seconds"]:
                best[name] = {"seconds": wall, "client_cpu": cpu, "server_cpu": server_cpu}
    out: dict[str, Any] = {}
    for name, b in best.items():
        out[name] = {
            "rows_per_s": round(total / b["seconds"]),
            "seconds": round(b["seconds"], 3),
            "client_cpu_us_per_row": round(b["client_cpu"] / total * 1e6, 2),
            "server_cpu_share": round(b["server_cpu"] / b["seconds"], 2),
        }
    if requests_seen is not None:
        for name, run in contenders.items():
            before = requests_seen()
            run()
            time.sleep(0.3)  # cancelled read-ahead may still be on its way to the server
            out[name]["requests"] = requests_seen() - before
    if why_not is not None:
        out["opendental-sdk"] = {"error": why_not}
    return out


def emulator_requests(base: str) -> int:
    """Requests the emulator's Local listener has answered so far (its admin stats route)."""
    r = httpx2.get(base.rsplit("/api/v1", 1)[0] + "/_emulator/stats", timeout=30)
    r.raise_for_status()
    return int(r.json()["listeners"]["local"]["requests"])


# -- 2. time to first row --------------------------------------------------------------------------


def hub_with_loaded_ssl() -> Hub:
    """A fresh hub (no pools, no mode state) whose transports reuse an SSL context already loaded."""
    return Hub(
        transport_factory=lambda n: httpx2.AsyncHTTPTransport(
            verify=STREAM_SSL, limits=httpx2.Limits(max_connections=n, max_keepalive_connections=n)
        )
    )


async def first_row_odapi(
    endpoints: dict[str, str], modes: tuple[str, ...], hub: Hub | None = None
) -> tuple[float, str]:
    t0 = time.perf_counter()
    async with session(endpoints, hub, modes=modes) as od:
        async for _ in od.appointments.list():
            break
        return time.perf_counter() - t0, str(od.mode)


async def first_row_bare(base: str, verify: Any = True) -> float:
    t0 = time.perf_counter()
    async with httpx2.AsyncClient(timeout=60.0, verify=verify) as client:
        r = await client.get(base + "/appointments", params={"Offset": 0, "Limit": PAGE}, headers=HEADERS)
        r.raise_for_status()
        BARE_DECODER.decode(r.content)
    return time.perf_counter() - t0


def first_rows(endpoints: dict[str, str], samples: int) -> dict[str, Any]:
    """Median and best ms to the first row of a fresh session landing on each mode.

    ``cascade``: the default three modes, the earlier ones refusing connections; ``one_mode``: only that
    mode; ``*_ssl_loaded``: the same with an SSL context already loaded (a process's second hub or client);
    ``bare``: a fresh ``httpx2.AsyncClient`` and one GET.
    """
    dead = closed_port_url()
    cascades = {
        "local": dict(endpoints),
        "service": {"local": dead, "service": endpoints["service"], "remote": endpoints["remote"]},
        "remote": {"local": dead, "service": dead, "remote": endpoints["remote"]},
    }
    all_modes = ("local", "service", "remote")
    out: dict[str, Any] = {}
    for mode, eps in cascades.items():
        runs: dict[str, Callable[[], float]] = {
            "cascade": lambda: landed(mode, asyncio.run(first_row_odapi(eps, all_modes))),
            "cascade_ssl_loaded": lambda: landed(
                mode, asyncio.run(first_row_odapi(eps, all_modes, hub_with_loaded_ssl()))
            ),
            "one_mode": lambda: asyncio.run(first_row_odapi({mode: endpoints[mode]}, (mode,)))[0],
            "bare": lambda: asyncio.run(first_row_bare(endpoints[mode])),
            "bare_ssl_loaded": lambda: asyncio.run(first_row_bare(endpoints[mode], STREAM_SSL)),
        }
        times: dict[str, list[float]] = {k: [] for k in runs}
        for _ in range(samples):
            for name, run in runs.items():
                times[name].append(run())
                # Spaced beyond the remote interval: every fresh session starts with a cold throttle.
                time.sleep(REMOTE_INTERVAL * 3 if mode == "remote" else 0.01)
        out[mode] = {
            k: {"median": round(statistics.median(v) * 1000, 1), "best": round(min(v) * 1000, 1)}
            for k, v in times.items()
        }
    return out


def landed(mode: str, got: tuple[float, str]) -> float:
    if got[1] != mode:
        raise SystemExit(f"time to first row: the cascade landed on {got[1]}, not {mode}")
    return got[0]


# -- 3. peak RSS -----------------------------------------------------------------------------------


def rss_child(contender: str, base: str, rows: int) -> None:
    """In a child: stream ``rows`` rows and print the baseline and peak (kB) as one JSON line."""
    gc.collect()
    status = dict(
        line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines() if ":" in line
    )
    baseline = int(status["VmRSS"].split()[0])
    if contender == "odapi":
        got, _ = asyncio.run(odapi_stream(base, AHEAD, want=rows))
    else:
        got, _ = asyncio.run(bare_stream(base, AHEAD, want=rows))
    status = dict(
        line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines() if ":" in line
    )
    print(json.dumps({"baseline_kb": baseline, "peak_kb": int(status["VmHWM"].split()[0]), "rows": got}))


def fake_server(page_file: str) -> None:
    """Serve ``GET /<total>/api/v1/appointments?Offset=N&Limit=L``: rows N+1.. of a list of ``total``.

    The rows are the emulator's first page over and over, each with ``AptNum`` = its position (1-based), so
    pages differ and connect as a real list's do (a client may check that). A few lines of asyncio, HTTP/1.1
    keep-alive, GET only: just enough for the streaming loops. The total sits in the URL so one server serves
    every length asked.
    """
    template = msgspec.json.decode(Path(page_file).read_bytes())
    # Each row as the bytes around its AptNum, so that a page is a join, not an encode.
    halves = [tuple(msgspec.json.encode({**row, "AptNum": 0}).split(b'"AptNum":0', 1)) for row in template]

    @functools.lru_cache(maxsize=256)  # rounds ask the same pages again: keep this server out of the way
    def answer(offset: int, limit: int, total: int) -> bytes:
        n = len(halves)
        body = (
            b"["
            + b",".join(
                halves[i % n][0] + b'"AptNum":' + str(i + 1).encode() + halves[i % n][1]
                for i in range(offset, min(offset + limit, total))
            )
            + b"]"
        )
        head = f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        return head.encode() + body

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                path, _, query = head.split(b" ", 2)[1].decode().partition("?")
                total = int(path.split("/")[1])
                params = dict(p.split("=", 1) for p in query.split("&") if "=" in p)
                offset, limit = int(params.get("Offset", 0)), min(int(params.get("Limit", PAGE)), PAGE)
                writer.write(answer(offset, limit, total))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def serve() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        print(json.dumps({"root": f"http://127.0.0.1:{port}"}), flush=True)
        async with server:
            await server.serve_forever()

    asyncio.run(serve())


def start_fake_server(emulator_base: str, page_file: str) -> tuple[subprocess.Popen[str], str]:
    """The fake server in its own process, serving the emulator's first page of appointments."""
    r = httpx2.get(emulator_base + "/appointments", params={"Offset": 0, "Limit": PAGE}, headers=HEADERS)
    r.raise_for_status()
    Path(page_file).write_bytes(r.content)
    server, line = start_child([__file__, "--fake-server", page_file])
    return server, json.loads(line)["root"]


def rss_run(contender: str, base: str, rows: int) -> dict[str, Any]:
    """One child streaming ``rows`` rows: its baseline and peak RSS."""
    t0 = time.perf_counter()
    done = subprocess.run(
        [sys.executable, __file__, "--rss-child", contender, base, "--rss-rows", str(rows)],
        capture_output=True, text=True, env=child_env(), cwd=ROOT, timeout=600, check=True,
    )  # fmt: skip
    seconds = time.perf_counter() - t0
    got = json.loads(done.stdout.strip().splitlines()[-1])
    return {
        "rows": got["rows"],
        "baseline_mb": round(got["baseline_kb"] / 1024, 1),
        "peak_mb": round(got["peak_kb"] / 1024, 1),
        "above_baseline_mb": round((got["peak_kb"] - got["baseline_kb"]) / 1024, 1),
        "seconds": round(seconds, 1),
    }


def peak_rss(base_for: Callable[[int], str], rows: int) -> dict[str, Any]:
    """Peak RSS above the after-import baseline, per contender, for ``rows`` and for a tenth of them: a flat
    stream peaks at the same height whatever its length."""
    out: dict[str, Any] = {}
    for contender in ("odapi", "bare"):
        out[contender] = rss_run(contender, base_for(rows), rows)
        out[contender]["tenth"] = rss_run(contender, base_for(rows // 10), rows // 10)
    return out


# -- main ------------------------------------------------------------------------------------------


def count_rows(base: str) -> tuple[int, int]:
    r = httpx2.put(
        base + "/queries/ShortQuery",
        json={"SqlCommand": "SELECT count(*) AS n, max(AptNum) AS last FROM appointments"},
        headers=HEADERS,
        timeout=60,
    )
    r.raise_for_status()
    row = r.json()[0]
    return int(row["n"]), int(row["last"])


def ratios(section: dict[str, Any]) -> dict[str, float]:
    """odapi ra=3 against the bare loop with the same read-ahead and against the peer (nan if it did not run)."""

    def rate(name: str) -> float:
        return float(section.get(name, {}).get("rows_per_s", float("nan")))

    return {
        "odapi_vs_bare_ra3": round(rate("odapi ra=3") / rate("bare ra=3"), 2),
        "odapi_ra0_vs_bare": round(rate("odapi ra=0") / rate("bare"), 2),
        "odapi_vs_peer": round(rate("odapi ra=3") / rate("opendental-sdk"), 1),
    }


def summary(result: dict[str, Any]) -> str:
    lines = []
    for key, label in (("throughput", "emulator"), ("client_bound", "fake server")):
        section = result[key]
        rates = ", ".join(
            f"{n} {v['rows_per_s'] / 1000:.0f}k" for n, v in section.items() if "rows_per_s" in v
        )
        r = ratios(section)
        lines.append(
            f"paging from the {label}: {rates} rows/s; odapi/bare (ra=3) {r['odapi_vs_bare_ra3']}x "
            f"(ra=0 {r['odapi_ra0_vs_bare']}x), odapi/opendental-sdk {r['odapi_vs_peer']}x"
        )
    ttfr = ", ".join(
        f"{m} {v['cascade']['median']} ms (bare {v['bare']['median']})"
        for m, v in result["first_row_ms"].items()
    )
    rss = result["rss"]["odapi"]
    lines.append(
        f"first row of a fresh session: {ttfr}; peak RSS streaming {rss['rows']} rows: "
        f"+{rss['above_baseline_mb']} MB over the after-import baseline (target <= 30 MB; "
        f"+{rss['tenth']['above_baseline_mb']} MB for {rss['tenth']['rows']} rows)"
    )
    vs_bare = result["ratios"]["throughput"]["odapi_vs_bare_ra3"]
    vs_peer = result["ratios"]["throughput"]["odapi_vs_peer"]
    verdicts = [
        f"odapi >= 1.0x bare with the same read-ahead: {'met' if vs_bare >= 1.0 else 'MISSED'} ({vs_bare}x)",
        f"odapi >= 5x opendental-sdk: {'met' if vs_peer >= 5 else 'MISSED'} ({vs_peer}x)",
        f"peak RSS <= 30 MB above baseline: {'met' if rss['above_baseline_mb'] <= 30 else 'MISSED'}",
    ]
    lines.append("targets (from the emulator): " + "; ".join(verdicts))
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--patients", type=int, default=10_500, help="emulator practice size (~5 appts each)")
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--first-row-samples", type=int, default=5)
    ap.add_argument("--client-rows", type=int, default=100_000, help="rows per stream from the fake server")
    ap.add_argument("--rss-rows", type=int, default=1_000_000)
    ap.add_argument("--rss-source", choices=("fake", "emulator"), default="fake")
    ap.add_argument("--rss-child", nargs=2, metavar=("CONTENDER", "BASE"), help=argparse.SUPPRESS)
    ap.add_argument("--fake-server", metavar="PAGE_FILE", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.rss_child:
        return rss_child(args.rss_child[0], args.rss_child[1], args.rss_rows)
    if args.fake_server:
        return fake_server(args.fake_server)

    # The cascade's "now using ..." warnings are expected here (dead modes on purpose): keep them off stderr.
    logging.getLogger("odapi_async").addHandler(logging.NullHandler())
    warnings.filterwarnings("ignore", module="pydantic")  # opendental-sdk's v1-style config, at import
    started = time.perf_counter()
    emu, endpoints = start_emulator(args.patients)
    fake = None
    with tempfile.TemporaryDirectory() as tmp:
        try:
            local = endpoints["local"]
            total, last_id = count_rows(local)
            fake, fake_root = start_fake_server(local, str(Path(tmp) / "page.json"))
            result: dict[str, Any] = {"benchmark": "paging", "rows": total, "page": PAGE, "reps": args.reps}
            result["throughput"] = throughput(
                local, args.reps, total, last_id, emu.pid, lambda: emulator_requests(local)
            )
            result["client_rows"] = args.client_rows
            result["client_bound"] = throughput(
                f"{fake_root}/{args.client_rows}/api/v1",
                args.reps,
                args.client_rows,
                args.client_rows,
                fake.pid,
            )
            result["ratios"] = {k: ratios(result[k]) for k in ("throughput", "client_bound")}
            result["first_row_ms"] = first_rows(endpoints, args.first_row_samples)

            def rss_base(rows: int) -> str:
                return local if args.rss_source == "emulator" else f"{fake_root}/{rows}/api/v1"

            result["rss"] = {"source": args.rss_source, **peak_rss(rss_base, args.rss_rows)}
        finally:
            if fake is not None:
                stop_child(fake)
            stop_child(emu)
    result["seconds"] = round(time.perf_counter() - started, 1)
    print(json.dumps(result))
    print(summary(result))


if __name__ == "__main__":
    main()
