"""RedisThrottle across real processes: workers share one customer key through one redis-server.

The emulator runs in this (the test's) process and counts violations at arrival; each worker is a separate
Python process (``worker.py``) with its own event loop and local throttle.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import anyio
import pytest
from redis_support import NEEDS_REDIS, RedisServer, T, remote_stats

from odapi_async import KeySettings, RedisThrottle
from odapi_async._throttle.redis_scripts import state_keys

pytestmark = NEEDS_REDIS

WORKER = str(Path(__file__).with_name("worker.py"))


def spawn(*args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path.cwd()), os.environ.get("PYTHONPATH", "")])}
    return subprocess.Popen(
        [sys.executable, WORKER, *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def finish(proc: subprocess.Popen[str], timeout: float = 60) -> str:
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err[-2000:]
    return out


@pytest.mark.slow("four processes each send ten requests spaced on one key (7 s under load)")
def test_four_processes_of_ten_tasks_on_one_key_make_no_violation(
    emu: Any, redis_server: RedisServer
) -> None:
    emu.reset_stats()
    n, per = 4, 10  # per worker: 10 tasks, one request each
    workers = [
        spawn("requests", redis_server.url, emu.endpoints["remote"], "k7", str(per), str(T)) for _ in range(n)
    ]
    try:
        for w in workers:  # every worker has imported, opened its session and waits: start them at once
            assert w.stdout is not None and w.stdout.readline().strip() == "ready"
        for w in workers:
            assert w.stdin is not None
            w.stdin.write("go\n")
            w.stdin.flush()
        results = [json.loads(finish(w).splitlines()[-1]) for w in workers]
    finally:
        for w in workers:
            if w.poll() is None:
                w.kill()
            w.communicate(timeout=10)  # reaps it and closes its pipes (a no-op after finish())
    st = remote_stats(emu, "k7")
    assert st["violations"] == 0
    assert st["requests"] == n * per
    span = max(r["end"] for r in results) - min(r["start"] for r in results)
    assert span >= (n * per - 1) * T * 0.99  # spaced as one key, not as four
    for r in results:
        assert r["requests"] == per
        # acquire (with its BLPOP) + release per request: the processes contend, and nobody asks twice
        assert r["busy"] == 0
        assert r["calls"] == 2 * per + r["noscript"]


def test_a_killed_holder_frees_the_key_after_the_lease_ttl(redis_server: RedisServer) -> None:
    ttl = 1.0
    holder = spawn("hold", redis_server.url, "kz", str(ttl))
    try:
        assert holder.stdout is not None
        word, at = holder.stdout.readline().split()
        assert word == "held"
        holder.send_signal(signal.SIGKILL)  # mid-request: no release, no cleanup
    finally:
        if holder.poll() is None:
            holder.kill()
        holder.communicate(timeout=10)  # reaps it and closes the pipes

    async def next_turn() -> float:
        throttle = RedisThrottle(redis_server.url)
        throttle.configure("remote", "kz", KeySettings.build("remote", tier="full", intervals={"full": 0.1}))
        async with throttle.slot("remote", "kz"):
            return time.time()

    granted = asyncio.run(next_turn())
    waited = granted - float(at)
    assert ttl - 0.05 <= waited <= ttl + 0.4, waited


def test_a_waiter_killed_in_line_does_not_hold_the_key(redis_server: RedisServer) -> None:
    """A worker SIGKILLed while it waits in the Redis line is handed nothing that blocks the key past about
    one interval: the hand-over notices that it never read its turn, and passes the turn on."""
    interval = 0.1
    settings = KeySettings.build("remote", tier="full", intervals={"full": interval})

    async def scenario() -> float:
        import redis.asyncio as redis_asyncio

        holder, other = RedisThrottle(redis_server.url), RedisThrottle(redis_server.url)
        for throttle in (holder, other):
            throttle.configure("remote", "kd", settings)
        admin = redis_asyncio.Redis.from_url(redis_server.url)
        (line_key,) = [k for k in state_keys("odapi", "remote", "kd") if k.endswith(":line")]
        waiter = spawn("wait", redis_server.url, "kd")
        try:
            async with holder.slot("remote", "kd"):
                assert waiter.stdout is not None
                assert waiter.stdout.readline().strip() == "asking"
                with anyio.fail_after(10):
                    while await admin.zcard(line_key) < 1:  # noqa: ASYNC110 (no event across processes)
                        await asyncio.sleep(0.01)
                waiter.send_signal(signal.SIGKILL)  # in line: no LEAVE, no cleanup
                waiter.wait(timeout=10)
                behind = asyncio.create_task(_turn(other))
                with anyio.fail_after(10):
                    while await admin.zcard(line_key) < 2:  # noqa: ASYNC110 (no event across processes)
                        await asyncio.sleep(0.01)
                released = time.monotonic()
            granted = await asyncio.wait_for(behind, 30)
        finally:
            if waiter.poll() is None:
                waiter.kill()
            waiter.communicate(timeout=10)
            await admin.aclose()
        return granted - released

    waited = asyncio.run(scenario())
    assert waited <= interval + 1.0, waited  # not the lease TTL (30 s)


async def _turn(throttle: RedisThrottle) -> float:
    async with throttle.slot("remote", "kd"):
        return time.monotonic()
