"""Fixtures: a real redis-server per test, and the emulator (in a thread) with short intervals."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from odapi_async.emulator import Emulator
from odapi_async.emulator._stats import key_id
from redis_support import HAVE_REDIS, RedisServer

pytest.importorskip("redis.asyncio")

T = 0.1
KEYS = {**{f"k{n}": "full" for n in range(1, 10)}, "ro": "read_all"}
"""Each test uses its own keys: a fresh Redis knows nothing of what another test just sent."""
INTERVALS = {"full": T, "read_all": 0.3}


#: Every test module here: ``pytestmark = NEEDS_REDIS``.
NEEDS_REDIS = [
    pytest.mark.integration,
    pytest.mark.skipif(not HAVE_REDIS, reason="redis-server is not installed"),
]


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer()
    try:
        server.start()
        yield server
    finally:
        server.close()


@pytest.fixture(scope="module")
def emu() -> Iterator[Any]:
    with Emulator(
        seed=1, patients=20, developer_key="dev", customer_keys=KEYS, intervals=INTERVALS, fractional_retry_after=True
    ).in_thread() as e:
        yield e


def remote_stats(emu: Any, customer_key: str) -> dict[str, Any]:
    per = emu.stats()["keys"].get(key_id(customer_key), {"listeners": {}})
    return per["listeners"].get("remote", {"requests": 0, "violations": 0, "throttled": 0})
