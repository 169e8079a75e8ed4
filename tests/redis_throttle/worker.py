"""A worker process for the multi-process tests: ``python worker.py MODE REDIS_URL ...`` (see ``main``).

``requests ENDPOINT KEY N T``: waits for a line on stdin (so that every worker starts at once), sends N
requests on one customer key through a RedisThrottle from N tasks at once, prints one JSON line with what it
saw.
``hold KEY TTL``: takes one Redis turn on KEY, prints "held" and waits (to be SIGKILLed mid-request).
``wait KEY``: asks for a Redis turn on KEY (interval 0.1 s) and waits in line (to be SIGKILLed there).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

from odapi_async import KeySettings, OpenDental, RedisThrottle


async def send(url: str, endpoint: str, key: str, n: int, interval: float) -> None:
    throttle = RedisThrottle(url, lease_ttl=5.0)
    od = OpenDental(
        "dev", key, endpoints={"remote": endpoint}, modes=("remote",), tier="full",
        intervals={"full": interval}, throttle=throttle, max_retries=0,
    )  # fmt: skip
    async with od:
        print("ready", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        started = time.time()
        await asyncio.gather(*[od.request("GET", "/patients", params={"Limit": 1}) for _ in range(n)])
        ended = time.time()
    counters = throttle.redis_stats()
    (c,) = counters.values()
    print(
        json.dumps(
            {
                "start": started,
                "end": ended,
                "calls": c.calls,
                "busy": c.busy,
                "requests": c.requests,
                "noscript": c.noscript,
            }
        )
    )


async def hold(url: str, key: str, ttl: float) -> None:
    throttle = RedisThrottle(url, lease_ttl=ttl)
    async with throttle.slot("remote", key):
        print("held", time.time(), flush=True)
        await asyncio.sleep(3600)


async def wait(url: str, key: str) -> None:
    throttle = RedisThrottle(url)
    throttle.configure("remote", key, KeySettings.build("remote", tier="full", intervals={"full": 0.1}))
    print("asking", flush=True)
    async with throttle.slot("remote", key):
        print("granted", flush=True)  # not expected: the test holds the key and kills this worker first


def main() -> None:
    what, url, *rest = sys.argv[1:]
    if what == "requests":
        endpoint, key, n, interval = rest
        asyncio.run(send(url, endpoint, key, int(n), float(interval)))
    elif what == "hold":
        key, ttl = rest
        asyncio.run(hold(url, key, float(ttl)))
    elif what == "wait":
        (key,) = rest
        asyncio.run(wait(url, key))
    else:
        raise SystemExit(f"unknown worker {what!r}")


if __name__ == "__main__":
    main()
