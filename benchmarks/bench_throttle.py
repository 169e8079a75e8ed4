"""Throttle benchmarks against the emulator, which runs in its own process (it must not share our CPU).

    python benchmarks/bench_throttle.py [p1|p2|all] [--interval T] [--duration S] [--keys N]

P1  one key, 50 tasks, one-way latency 30 ms +- 30 % (J = 18 ms), interval T: violations counted by the
    emulator and achieved rate / (1 / (T + J)); then, in the same run, a naive ``AsyncLimiter(1, T)`` on a
    second key (for half the time, at least 8 s), and its violations. The emulator stamps a request's arrival
    *before* its latency fault (the fault delays the answer), so the way up is simulated in the client's
    network layer: each write reaches the socket 21..39 ms after httpx hands it over (httpx, and the
    throttle's ``trace`` hook, see it as sent at once). The emulator's latency fault (same spread) plays the
    way back.
P2  N keys (500) x T = 1 s for S seconds over HTTP: aggregate accepted / sum allowed, p99 start lag, client
    CPU seconds. ``p2-dry`` runs the same schedule with each request a 40..80 ms sleep instead of HTTP, to
    show the throttle's own cost apart from the HTTP client's.

Each benchmark prints one JSON line, then a one-line summary.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import random
import signal
import statistics
import sys
import time
from typing import Any

import httpcore2
import httpx2
from aiolimiter import AsyncLimiter

from odapi_async import APIStatusError, Hub, OpenDental
from odapi_async._throttle.key import KeyThrottle
from odapi_async.emulator import Emulator

DEV = "dev"
KEYS_PER_POOL = 1  # as the SDK's hub does: one pool per key (see odapi_async/_hub.py)
LATENCY = 0.021  # fixed part of the one-way delay
JITTER = 0.018  # uniform extra in [0, J): 21..39 ms, i.e. 30 ms +- 30 %


class _DelayedStream(httpcore2.AsyncNetworkStream):
    """A TCP stream whose writes reach the wire a random delay later, in order (a jittery way up).

    ``write`` returns at once, as it does when the kernel takes the bytes, so the client sees the request
    as sent (httpx's trace says so) and only the server sees it late.
    """

    def __init__(
        self, inner: httpcore2.AsyncNetworkStream, low: float, high: float, rng: random.Random
    ) -> None:
        self._inner, self._low, self._high, self._rng = inner, low, high, rng
        self._queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()
        self._last_due = 0.0
        self._pump = asyncio.create_task(self._run())

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            due, buffer = await self._queue.get()
            if due > loop.time():
                await asyncio.sleep(due - loop.time())
            await self._inner.write(buffer)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        due = asyncio.get_running_loop().time() + self._rng.uniform(self._low, self._high)
        self._last_due = max(due, self._last_due)  # bytes of one connection stay in order
        self._queue.put_nowait((self._last_due, buffer))

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return await self._inner.read(max_bytes, timeout)

    async def aclose(self) -> None:
        self._pump.cancel()
        await self._inner.aclose()

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _DelayedBackend(httpcore2.AsyncNetworkBackend):
    def __init__(self, low: float, high: float, seed: int = 1) -> None:
        self._inner = httpcore2.AnyIOBackend()
        self._low, self._high = low, high
        self._rng = random.Random(seed)

    async def connect_tcp(self, host: str, port: int, timeout: float | None = None, **kw: Any) -> Any:
        stream = await self._inner.connect_tcp(host, port, timeout, **kw)
        return _DelayedStream(stream, self._low, self._high, self._rng)

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


def jittery_transport(max_connections: int, low: float, high: float) -> httpx2.AsyncHTTPTransport:
    """An httpx2 transport whose requests take ``low..high`` seconds to reach the server."""
    transport = httpx2.AsyncHTTPTransport()
    transport._pool = httpcore2.AsyncConnectionPool(  # no public hook for a network backend
        max_connections=max_connections,
        max_keepalive_connections=max_connections,
        network_backend=_DelayedBackend(low, high),
    )
    return transport


def key_id(customer_key: str) -> str:
    """The id under which the emulator's stats list a customer key."""
    return Emulator.key_id(customer_key)


class EmulatorProcess:
    """``python -m odapi_async.emulator`` in a child process; stats and faults through its admin routes."""

    def __init__(
        self,
        *,
        customer_keys: dict[str, str] | None = None,
        bench_keys: int = 0,
        intervals: dict[str, float] | None = None,
        faults: dict[str, dict[str, float]] | None = None,
    ) -> None:
        self.args = ["--patients", "50", "--print-endpoints-json", "--fractional-retry-after"]
        self.args += ["--port-local", "0", "--port-service", "0", "--port-remote", "0"]
        for key, tier in (customer_keys or {}).items():
            self.args += ["--customer-key", f"{key}={tier}"]
        if bench_keys:
            self.args += ["--bench-keys", str(bench_keys)]
        for tier, seconds in (intervals or {}).items():
            self.args += ["--interval", f"{tier}={seconds}"]
        for listener, settings in (faults or {}).items():
            for name, value in settings.items():
                self.args += ["--fault", f"{listener}:{name}={value}"]
        self.proc: asyncio.subprocess.Process | None = None
        self.endpoints: dict[str, str] = {}
        self._admin: httpx2.AsyncClient | None = None

    async def __aenter__(self) -> EmulatorProcess:
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "odapi_async.emulator", *self.args, stdout=asyncio.subprocess.PIPE
        )
        assert self.proc.stdout is not None
        line = await asyncio.wait_for(self.proc.stdout.readline(), 60)
        if not line:
            raise RuntimeError("the emulator process exited during start-up")
        self.endpoints = json.loads(line)
        root = self.endpoints["remote"].rsplit("/api/v1", 1)[0]
        self._admin = httpx2.AsyncClient(base_url=root, timeout=60)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._admin is not None:
            await self._admin.aclose()
        if self.proc is not None and self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.proc.wait(), 15)
            except asyncio.TimeoutError:
                self.proc.kill()
                await self.proc.wait()

    def cpu_seconds(self) -> float:
        """CPU time the emulator process has used so far (Linux /proc; 0.0 elsewhere)."""
        if self.proc is None:
            return 0.0
        try:
            fields = open(f"/proc/{self.proc.pid}/stat").read().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    async def stats(self) -> dict[str, Any]:
        assert self._admin is not None
        r = await self._admin.get("/_emulator/stats")
        r.raise_for_status()
        return r.json()  # type: ignore[no-any-return]


def remote_stats(snapshot: dict[str, Any], customer_key: str) -> dict[str, Any]:
    per = snapshot["keys"].get(key_id(customer_key), {"listeners": {}})
    return per["listeners"].get("remote", {"requests": 0, "violations": 0, "accepted_arrivals": []})


def headers(customer_key: str) -> dict[str, str]:
    return {"Authorization": f"ODFHIR {DEV}/{customer_key}", "Content-Type": "application/json"}


def rate_of(arrivals: list[float]) -> float:
    if len(arrivals) < 2:
        return 0.0
    return (len(arrivals) - 1) / (arrivals[-1] - arrivals[0])


def min_gap(arrivals: list[float]) -> float:
    return min((b - a for a, b in zip(arrivals, arrivals[1:])), default=float("nan"))


# -- P1 ---------------------------------------------------------------------------------------------


async def p1(interval: float, duration: float, via_session: bool = False) -> dict[str, Any]:
    async with EmulatorProcess(
        customer_keys={"ours": "full", "naive": "full"},
        intervals={"full": interval},
        faults={"remote": {"latency": LATENCY, "jitter": JITTER}},
    ) as emu:
        url = emu.endpoints["remote"] + "/patients"
        throttle = KeyThrottle("remote", "p1", tier="full", intervals={"full": interval})
        limiter = AsyncLimiter(1, interval)
        client_429 = {"ours": 0, "naive": 0}
        transport = jittery_transport(120, LATENCY, LATENCY + JITTER)
        async with httpx2.AsyncClient(transport=transport, timeout=30) as client:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + duration

            async def get(key: str, trace: Any = None) -> None:
                ext = {"trace": trace} if trace is not None else None
                r = await client.get(url, params={"Limit": 1}, headers=headers(key), extensions=ext)
                await r.aread()
                if r.status_code == 429:
                    client_429[key] += 1
                    if key == "ours":
                        throttle.report_throttled(float(r.headers.get("Retry-After", 0)))

            async def ours() -> None:
                while loop.time() < deadline:
                    async with throttle.slot() as slot:
                        if loop.time() >= deadline:
                            return
                        await get("ours", slot.trace)

            async def ours_via_session() -> None:
                while True:
                    await od.request("GET", "/patients", params={"Limit": 1})

            async def naive() -> None:
                while loop.time() < deadline:
                    async with limiter:
                        if loop.time() >= deadline:
                            return
                        await get("naive")

            # One after the other, so that neither steals the other's CPU or server time.
            if via_session:
                # The product path: an OpenDental session whose hub gives it the same simulated network.
                hub = Hub(transport_factory=lambda n: jittery_transport(n or 10, LATENCY, LATENCY + JITTER))
                od = OpenDental(DEV, "ours", endpoints=emu.endpoints, modes=("remote",), tier="full",
                                intervals={"full": interval}, max_retries=5, hub=hub)  # fmt: skip
                async with od:
                    throttle = od._core.hub.throttle.key("remote", od.key_id)
                    # Cancelled at the deadline: a queued request consumes nothing.
                    with contextlib.suppress(asyncio.TimeoutError):
                        await asyncio.wait_for(
                            asyncio.gather(*[ours_via_session() for _ in range(50)]), duration
                        )
            else:
                await asyncio.gather(*[ours() for _ in range(50)])
            deadline = loop.time() + max(duration / 2, 8.0)
            await asyncio.gather(*[naive() for _ in range(50)])
        snap = await emu.stats()
    s_ours, s_naive = remote_stats(snap, "ours"), remote_stats(snap, "naive")
    acc = s_ours["accepted_arrivals"]
    limit = 1 / (interval + JITTER)
    st = throttle.stats()
    return {
        "bench": "p1-session" if via_session else "p1",
        "interval": interval,
        "latency_ms": [LATENCY * 1000, (LATENCY + JITTER) * 1000],
        "duration": duration,
        "ours": {
            "requests": s_ours["requests"],
            "violations": s_ours["violations"],
            "rate": rate_of(acc),
            "ratio_to_jitter_limit": rate_of(acc) / limit,
            "min_gap": min_gap(acc),
            "mean_gap": statistics.fmean(b - a for a, b in zip(acc, acc[1:])) if len(acc) > 1 else None,
            "throttle_answers": st.throttle_answers,
        },
        "naive_aiolimiter": {
            "requests": s_naive["requests"],
            "violations": s_naive["violations"],
            "violation_share": s_naive["violations"] / max(s_naive["requests"], 1),
            "accepted_rate": rate_of(s_naive["accepted_arrivals"]),
        },
        "jitter_limit_rate": limit,
    }


def p1_summary(r: dict[str, Any]) -> str:
    o, n = r["ours"], r["naive_aiolimiter"]
    return (
        f"{r['bench'].upper()} T={r['interval']}s: ours {o['requests']} requests, {o['violations']} violations, "
        f"rate {o['rate']:.3f}/s = {o['ratio_to_jitter_limit']:.3f} of 1/(T+J), min gap {o['min_gap'] * 1000:.1f} ms"
        f" | AsyncLimiter: {n['requests']} requests, {n['violations']} violations ({n['violation_share']:.0%})"
    )


# -- P2 ---------------------------------------------------------------------------------------------


async def p2(
    n_keys: int,
    duration: float,
    interval: float = 1.0,
    per_key_tasks: int = 2,
    stagger: bool = False,
    via_session: bool = False,
) -> dict[str, Any]:
    names = [f"bench-{i}" for i in range(n_keys)]
    async with EmulatorProcess(bench_keys=n_keys, intervals={"full": interval}) as emu:
        if via_session:
            return await _p2_sessions(emu, names, duration, interval, per_key_tasks, stagger)
        url = emu.endpoints["remote"] + "/patients"
        throttles = {n: KeyThrottle("remote", n, tier="full", intervals={"full": interval}) for n in names}
        lags: list[float] = []
        for t in throttles.values():
            t.on_start_lag = lags.append
        # One httpx2 pool with 500 busy connections spent ~11 ms of CPU per request here (its pool bookkeeping
        # grows with its connections); 20 pools of 25 ~2 ms; a pool per key ~1.7 ms.
        n_pools = max(1, -(-n_keys // KEYS_PER_POOL))
        limits = httpx2.Limits(max_connections=KEYS_PER_POOL + 5, max_keepalive_connections=KEYS_PER_POOL + 5)
        client_codes: dict[int, int] = {}
        async with contextlib.AsyncExitStack() as stack:
            clients = [
                await stack.enter_async_context(httpx2.AsyncClient(limits=limits, timeout=30))
                for _ in range(n_pools)
            ]
            loop = asyncio.get_running_loop()
            # Open the connections first so that connection setup is not counted as throttle lag.
            await asyncio.gather(
                *[c.get(emu.endpoints["remote"] + "/nothing") for c in clients for _ in range(KEYS_PER_POOL)]
            )
            cpu0, t0, emu_cpu0 = time.process_time(), loop.time(), emu.cpu_seconds()
            deadline = t0 + duration

            async def worker(i: int, name: str) -> None:
                t, h, client = throttles[name], headers(name), clients[i // KEYS_PER_POOL]
                if stagger:  # keys out of phase, as when they did not all start in the same instant
                    await asyncio.sleep(interval * i / n_keys)
                while loop.time() < deadline:
                    async with t.slot() as slot:
                        if loop.time() >= deadline:
                            return
                        r = await client.get(
                            url, params={"Limit": 1}, headers=h, extensions={"trace": slot.trace}
                        )
                        await r.aread()
                    client_codes[r.status_code] = client_codes.get(r.status_code, 0) + 1
                    if r.status_code == 429:
                        t.report_throttled(float(r.headers.get("Retry-After", 0)))

            await asyncio.gather(*[worker(i, n) for i, n in enumerate(names) for _ in range(per_key_tasks)])
            cpu = time.process_time() - cpu0
            wall = loop.time() - t0
            emu_cpu = emu.cpu_seconds() - emu_cpu0
        snap = await emu.stats()
    result = p2_result("p2", snap, names, duration, interval, stagger, lags, cpu, wall, client_codes)
    return {**result, "emulator_cpu_share": emu_cpu / wall}


async def _p2_sessions(
    emu: EmulatorProcess,
    names: list[str],
    duration: float,
    interval: float,
    per_key_tasks: int,
    stagger: bool,
) -> dict[str, Any]:
    """P2 through the SDK itself: one ``OpenDental`` session per key on one hub (its sharded pools)."""
    hub = Hub()
    sessions = [
        OpenDental(
            DEV,
            n,
            endpoints=emu.endpoints,
            modes=("remote",),
            tier="full",
            intervals={"full": interval},
            max_retries=0,
            hub=hub,
        )
        for n in names
    ]
    lags: list[float] = []
    client_codes: dict[int, int] = {}
    async with contextlib.AsyncExitStack() as stack:
        for od in sessions:
            await stack.enter_async_context(od)
            od._core.hub.throttle.key("remote", od.key_id).on_start_lag = lags.append
        loop = asyncio.get_running_loop()
        # Open each key's connection first (outside the throttle) so that connection setup is not lag.
        await asyncio.gather(
            *[
                hub.pools.client(od.key_id, od._core.attempts, max_connections=1).get(
                    emu.endpoints["remote"] + "/nothing"
                )
                for od in sessions
            ]
        )
        if gc.get_threshold()[0] != 700:
            gc.freeze()  # the start-up objects (sessions, pools, connections) live on: stop rescanning them
        cpu0, t0, emu_cpu0 = time.process_time(), loop.time(), emu.cpu_seconds()
        deadline = t0 + duration

        async def worker(i: int, od: OpenDental) -> None:
            if stagger:
                await asyncio.sleep(interval * i / len(sessions))
            while True:
                try:
                    await od.request("GET", "/patients", params={"Limit": 1})
                    code = 200
                except APIStatusError as exc:
                    code = exc.status_code
                client_codes[code] = client_codes.get(code, 0) + 1

        # At the deadline every task is cancelled: a request still queued consumes nothing, so every request
        # the emulator saw started inside the window.
        tasks = [worker(i, od) for i, od in enumerate(sessions) for _ in range(per_key_tasks)]
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(asyncio.gather(*tasks), timeout=deadline - loop.time())
        cpu = time.process_time() - cpu0
        wall = loop.time() - t0
        emu_cpu = emu.cpu_seconds() - emu_cpu0
    snap = await emu.stats()
    result = p2_result("p2-session", snap, names, duration, interval, stagger, lags, cpu, wall, client_codes)
    return {**result, "emulator_cpu_share": emu_cpu / wall}


def p2_result(
    bench: str,
    snap: dict[str, Any],
    names: list[str],
    duration: float,
    interval: float,
    stagger: bool,
    lags: list[float],
    cpu: float,
    wall: float,
    client_codes: dict[int, int],
) -> dict[str, Any]:
    n_keys = len(names)
    accepted = violations = 0
    rates = []
    for n in names:
        s = remote_stats(snap, n)
        accepted += len(s["accepted_arrivals"])
        violations += s["violations"]
        rates.append(rate_of(s["accepted_arrivals"]))
    # starts at o, o + T, o + 2T, ... before the deadline: D / T of them for any offset o < T when T divides D
    allowed = n_keys * duration / interval
    lags.sort()
    return {
        "bench": bench,
        "staggered": stagger,
        "keys": n_keys,
        "interval": interval,
        "duration": duration,
        "accepted": accepted,
        "allowed": allowed,
        "ratio": accepted / allowed,
        "rate_ratio": sum(rates) * interval / n_keys,
        "violations": violations,
        "start_lag_p50_ms": 1000 * lags[len(lags) // 2] if lags else None,
        "start_lag_p99_ms": 1000 * lags[int(len(lags) * 0.99)] if lags else None,
        "start_lag_max_ms": 1000 * lags[-1] if lags else None,
        "client_cpu_s": cpu,
        "client_cpu_share": cpu / wall,
        "client_statuses": {str(k): v for k, v in sorted(client_codes.items())},
    }


async def p2_dry(
    n_keys: int, duration: float, interval: float = 1.0, per_key_tasks: int = 2
) -> dict[str, Any]:
    """P2 without HTTP: each request is a 40..80 ms sleep. Measures the throttle's own cost and lag."""
    import random

    rng = random.Random(2)
    throttles = [
        KeyThrottle("remote", f"dry-{i}", tier="full", intervals={"full": interval}) for i in range(n_keys)
    ]
    lags: list[float] = []
    starts: list[list[float]] = [[] for _ in range(n_keys)]
    for t in throttles:
        t.on_start_lag = lags.append
    loop = asyncio.get_running_loop()
    cpu0, t0 = time.process_time(), loop.time()
    deadline = t0 + duration

    async def worker(i: int) -> None:
        t = throttles[i]
        while loop.time() < deadline:
            async with t.slot():
                if loop.time() >= deadline:
                    return
                starts[i].append(loop.time())
                await asyncio.sleep(rng.uniform(0.04, 0.08))

    await asyncio.gather(*[worker(i) for i in range(n_keys) for _ in range(per_key_tasks)])
    cpu = time.process_time() - cpu0
    wall = loop.time() - t0
    done = sum(len(s) for s in starts)
    too_close = sum(1 for s in starts for a, b in zip(s, s[1:]) if b - a < interval)
    lags.sort()
    return {
        "bench": "p2-dry",
        "keys": n_keys,
        "interval": interval,
        "duration": duration,
        "accepted": done,
        "allowed": n_keys * duration / interval,
        "ratio": done / (n_keys * duration / interval),
        "rate_ratio": sum(rate_of(s) for s in starts) * interval / n_keys,
        "violations": too_close,
        "start_lag_p50_ms": 1000 * lags[len(lags) // 2],
        "start_lag_p99_ms": 1000 * lags[int(len(lags) * 0.99)],
        "start_lag_max_ms": 1000 * lags[-1],
        "client_cpu_s": cpu,
        "client_cpu_share": cpu / wall,
    }


def p2_summary(r: dict[str, Any]) -> str:
    return (
        f"{r['bench'].upper()} {r['keys']} keys x T={r['interval']}s x {r['duration']}s: {r['accepted']}/{r['allowed']} = "
        f"{r['ratio']:.3f} of allowed (by spacing {r['rate_ratio']:.3f}), {r['violations']} violations, start lag p99 {r['start_lag_p99_ms']:.1f} ms,"
        f" client CPU {r['client_cpu_s']:.1f} s ({r['client_cpu_share']:.0%} of a core)"
        + (f", emulator {r['emulator_cpu_share']:.0%} of a core" if "emulator_cpu_share" in r else "")
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("which", nargs="?", default="all", choices=["p1", "p2", "p2-dry", "all"])
    ap.add_argument("--interval", type=float, default=0.2, help="P1 interval T (s)")
    ap.add_argument("--duration", type=float, default=None, help="run length (s); P1 18, P2 20")
    ap.add_argument("--keys", type=int, default=500, help="P2 key count")
    ap.add_argument("--stagger", action="store_true", help="P2: start the keys spread over one interval")
    ap.add_argument("--via-session", action="store_true", help="P1/P2: go through OpenDental sessions")
    ap.add_argument(
        "--gc-threshold",
        type=int,
        default=0,
        help="P2: gc.set_threshold(N, 50, 100) first, as a many-key worker should (default: Python's own)",
    )
    args = ap.parse_args()
    os.environ.setdefault("PYTHONHASHSEED", "0")
    if args.gc_threshold:
        # With hundreds of keys the process holds many live objects; Python's default collector (a young
        # collection every 700 allocations, full ones scanning everything) then stalls the loop for up to
        # ~130 ms at a time, which shows as start lag. See docs/throttle.md "Many keys".
        gc.set_threshold(args.gc_threshold, 50, 100)
    if args.which in ("p1", "all"):
        r = asyncio.run(p1(args.interval, args.duration or 18.0, via_session=args.via_session))
        print(json.dumps(r))
        print(p1_summary(r))
    if args.which in ("p2", "all"):
        r = asyncio.run(
            p2(args.keys, args.duration or 20.0, stagger=args.stagger, via_session=args.via_session)
        )
        r["gc_threshold"] = list(gc.get_threshold())
        print(json.dumps(r))
        print(p2_summary(r))
    if args.which in ("p2-dry", "all"):
        r = asyncio.run(p2_dry(args.keys, args.duration or 20.0))
        print(json.dumps(r))
        print(p2_summary(r))


if __name__ == "__main__":
    main()
