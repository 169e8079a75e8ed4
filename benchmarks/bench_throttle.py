"""Throttle benchmarks against the emulator, which runs in its own process (it must not share our CPU).

    python benchmarks/bench_throttle.py [p1|p2|all] [--interval T] [--duration S] [--keys N]

P1  one key, 50 tasks, one-way latency 30 ms +- 30 % (J = 18 ms), interval T: violations counted by the
    emulator and achieved rate / (1 / (T + J)); beside it, in the same run, a naive ``AsyncLimiter(1, T)``
    on a second key, and its violations. The emulator stamps a request's arrival *before* its latency fault
    (the fault delays the answer), so the way up is simulated by a client transport that holds each request
    21..39 ms before it leaves; the emulator's latency fault (same distribution) plays the way back.
P2  N keys (500) x T = 1 s for S seconds: aggregate accepted / sum allowed, p99 start lag, client CPU seconds.

Each benchmark prints one JSON line, then a one-line summary.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import statistics
import sys
import time
from typing import Any

import httpx2
from aiolimiter import AsyncLimiter

from odapi_async._throttle import KeyThrottle

DEV = "dev"
LATENCY = 0.021  # fixed part of the one-way delay
JITTER = 0.018  # uniform extra in [0, J): 21..39 ms, i.e. 30 ms +- 30 %

# The emulator's side: started with `python -c`, driven by JSON lines on stdin (stats, faults, quit).
_EMULATOR_SCRIPT = r"""
import asyncio, json, sys
from odapi_async.emulator import Emulator

async def main():
    cfg = json.loads(sys.argv[1])
    async with Emulator(**cfg) as emu:
        print(json.dumps({"endpoints": emu.endpoints}), flush=True)
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        while line := await reader.readline():
            cmd = json.loads(line)
            out = {}
            if cmd["op"] == "stats":
                out = emu.stats()
            elif cmd["op"] == "faults":
                emu.set_faults(cmd["listener"], **cmd["faults"])
            elif cmd["op"] == "quit":
                break
            print(json.dumps(out), flush=True)

asyncio.run(main())
"""


class UplinkDelay(httpx2.AsyncBaseTransport):
    """Holds each request a random one-way delay before it is sent (the way up of a jittery network)."""

    def __init__(self, inner: httpx2.AsyncBaseTransport, low: float, high: float, seed: int = 1) -> None:
        import random

        self._inner, self._low, self._high = inner, low, high
        self._rng = random.Random(seed)

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        await asyncio.sleep(self._rng.uniform(self._low, self._high))
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


def key_id(customer_key: str) -> str:
    """The emulator's id of a key in its stats (first 10 hex digits of SHA-256)."""
    try:
        from odapi_async.emulator._stats import key_id as emu_key_id
    except ImportError:
        return hashlib.sha256(customer_key.encode()).hexdigest()[:10]
    return emu_key_id(customer_key)


class EmulatorProcess:
    """The emulator in a child process, with a line-based control channel."""

    def __init__(self, **config: Any) -> None:
        self.config = config
        self.proc: asyncio.subprocess.Process | None = None
        self.endpoints: dict[str, str] = {}

    async def __aenter__(self) -> EmulatorProcess:
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            _EMULATOR_SCRIPT,
            json.dumps(self.config),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            limit=256 * 1024 * 1024,
        )
        first = await asyncio.wait_for(self._line(), 60)
        self.endpoints = first["endpoints"]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.proc is not None and self.proc.stdin is not None
        try:
            self.proc.stdin.write(b'{"op": "quit"}\n')
            await self.proc.stdin.drain()
            await asyncio.wait_for(self.proc.wait(), 10)
        except (Exception, asyncio.CancelledError):
            self.proc.kill()
            await self.proc.wait()

    async def _line(self) -> Any:
        assert self.proc is not None and self.proc.stdout is not None
        line = await self.proc.stdout.readline()
        if not line:
            raise RuntimeError("the emulator process exited")
        return json.loads(line)

    async def command(self, **cmd: Any) -> Any:
        assert self.proc is not None and self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(cmd).encode() + b"\n")
        await self.proc.stdin.drain()
        return await self._line()

    async def stats(self) -> dict[str, Any]:
        return await self.command(op="stats")  # type: ignore[no-any-return]

    async def set_faults(self, listener: str, **faults: float) -> None:
        await self.command(op="faults", listener=listener, faults=faults)


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


async def p1(interval: float, duration: float) -> dict[str, Any]:
    keys = {"ours": "full", "naive": "full"}
    async with EmulatorProcess(
        seed=1, patients=50, developer_key=DEV, customer_keys=keys, intervals={"full": interval}
    ) as emu:
        await emu.set_faults("remote", latency=LATENCY, jitter=JITTER)
        url = emu.endpoints["remote"] + "/patients"
        throttle = KeyThrottle("remote", "p1", tier="full", intervals={"full": interval})
        limiter = AsyncLimiter(1, interval)
        client_429 = {"ours": 0, "naive": 0}
        limits = httpx2.Limits(max_connections=120, max_keepalive_connections=120)
        transport = UplinkDelay(httpx2.AsyncHTTPTransport(limits=limits), LATENCY, LATENCY + JITTER)
        async with httpx2.AsyncClient(transport=transport, timeout=30) as client:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + duration

            async def get(key: str) -> None:
                r = await client.get(url, params={"Limit": 1}, headers=headers(key))
                await r.aread()
                if r.status_code == 429:
                    client_429[key] += 1
                    if key == "ours":
                        throttle.report_throttled(float(r.headers.get("Retry-After", 0)))

            async def ours() -> None:
                while loop.time() < deadline:
                    async with throttle.slot():
                        if loop.time() >= deadline:
                            return
                        await get("ours")

            async def naive() -> None:
                while loop.time() < deadline:
                    async with limiter:
                        if loop.time() >= deadline:
                            return
                        await get("naive")

            await asyncio.gather(*[ours() for _ in range(50)], *[naive() for _ in range(50)])
        snap = await emu.stats()
    s_ours, s_naive = remote_stats(snap, "ours"), remote_stats(snap, "naive")
    acc = s_ours["accepted_arrivals"]
    limit = 1 / (interval + JITTER)
    st = throttle.stats()
    return {
        "bench": "p1",
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
        f"P1 T={r['interval']}s: ours {o['requests']} requests, {o['violations']} violations, "
        f"rate {o['rate']:.3f}/s = {o['ratio_to_jitter_limit']:.3f} of 1/(T+J), min gap {o['min_gap'] * 1000:.1f} ms"
        f" | AsyncLimiter: {n['requests']} requests, {n['violations']} violations ({n['violation_share']:.0%})"
    )


# -- P2 ---------------------------------------------------------------------------------------------


async def p2(n_keys: int, duration: float, interval: float = 1.0, per_key_tasks: int = 2) -> dict[str, Any]:
    names = [f"bench{i:04d}" for i in range(n_keys)]
    async with EmulatorProcess(
        seed=1,
        patients=50,
        developer_key=DEV,
        customer_keys=dict.fromkeys(names, "full"),
        intervals={"full": interval},
    ) as emu:
        url = emu.endpoints["remote"] + "/patients"
        throttles = {n: KeyThrottle("remote", n, tier="full", intervals={"full": interval}) for n in names}
        lags: list[float] = []
        for t in throttles.values():
            t.on_start_lag = lags.append
        limits = httpx2.Limits(max_connections=n_keys + 50, max_keepalive_connections=n_keys + 50)
        client_codes: dict[int, int] = {}
        async with httpx2.AsyncClient(limits=limits, timeout=30) as client:
            loop = asyncio.get_running_loop()
            # Warm the connection pool first so that connection setup is not counted as throttle lag.
            await asyncio.gather(*[client.get(emu.endpoints["remote"] + "/nothing") for _ in range(50)])
            cpu0, t0 = time.process_time(), loop.time()
            deadline = t0 + duration

            async def worker(name: str) -> None:
                t, h = throttles[name], headers(name)
                while loop.time() < deadline:
                    async with t.slot():
                        if loop.time() >= deadline:
                            return
                        r = await client.get(url, params={"Limit": 1}, headers=h)
                        await r.aread()
                    client_codes[r.status_code] = client_codes.get(r.status_code, 0) + 1
                    if r.status_code == 429:
                        t.report_throttled(float(r.headers.get("Retry-After", 0)))

            await asyncio.gather(*[worker(n) for n in names for _ in range(per_key_tasks)])
            cpu = time.process_time() - cpu0
            wall = loop.time() - t0
        snap = await emu.stats()
    accepted = violations = 0
    for n in names:
        s = remote_stats(snap, n)
        accepted += len(s["accepted_arrivals"])
        violations += s["violations"]
    allowed = n_keys * (int(duration / interval) + 1)  # a key may start at 0, T, 2T, ... < duration
    lags.sort()
    return {
        "bench": "p2",
        "keys": n_keys,
        "interval": interval,
        "duration": duration,
        "accepted": accepted,
        "allowed": allowed,
        "ratio": accepted / allowed,
        "violations": violations,
        "start_lag_p50_ms": 1000 * lags[len(lags) // 2] if lags else None,
        "start_lag_p99_ms": 1000 * lags[int(len(lags) * 0.99)] if lags else None,
        "start_lag_max_ms": 1000 * lags[-1] if lags else None,
        "client_cpu_s": cpu,
        "client_cpu_share": cpu / wall,
        "client_statuses": {str(k): v for k, v in sorted(client_codes.items())},
    }


def p2_summary(r: dict[str, Any]) -> str:
    return (
        f"P2 {r['keys']} keys x T={r['interval']}s x {r['duration']}s: {r['accepted']}/{r['allowed']} = "
        f"{r['ratio']:.3f} of allowed, {r['violations']} violations, start lag p99 {r['start_lag_p99_ms']:.1f} ms,"
        f" client CPU {r['client_cpu_s']:.1f} s ({r['client_cpu_share']:.0%} of a core)"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("which", nargs="?", default="all", choices=["p1", "p2", "all"])
    ap.add_argument("--interval", type=float, default=0.2, help="P1 interval T (s)")
    ap.add_argument("--duration", type=float, default=None, help="run length (s); P1 18, P2 20")
    ap.add_argument("--keys", type=int, default=500, help="P2 key count")
    args = ap.parse_args()
    os.environ.setdefault("PYTHONHASHSEED", "0")
    if args.which in ("p1", "all"):
        r = asyncio.run(p1(args.interval, args.duration or 18.0))
        print(json.dumps(r))
        print(p1_summary(r))
    if args.which in ("p2", "all"):
        r = asyncio.run(p2(args.keys, args.duration or 20.0))
        print(json.dumps(r))
        print(p2_summary(r))


if __name__ == "__main__":
    main()
