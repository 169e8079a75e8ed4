"""Fixtures: a real redis-server per test, and the emulator (in a thread) with short intervals."""

from __future__ import annotations

from emulators import emulator_fixture
from redis_support import INTERVALS, KEYS

emu = emulator_fixture(
    thread=True,
    seed=1,
    patients=20,
    developer_key="dev",
    customer_keys=KEYS,
    intervals=INTERVALS,
    fractional_retry_after=True,
)
