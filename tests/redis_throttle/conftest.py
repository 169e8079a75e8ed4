"""Fixtures: a real redis-server per test, and the emulator (in a thread) with short intervals."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from redis_support import INTERVALS, KEYS, RedisServer

from odapi_async.emulator import Emulator


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
        seed=1,
        patients=20,
        developer_key="dev",
        customer_keys=KEYS,
        intervals=INTERVALS,
        fractional_retry_after=True,
    ).in_thread() as e:
        yield e
