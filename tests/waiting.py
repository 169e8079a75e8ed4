"""Bounded waits for the tests: wait on a condition, never ``sleep`` and hope it came true.

Use an ``asyncio.Event`` where the code under test can set one; :func:`until` is for state that offers no
event to await (the emulator's counters, a server in another thread or process).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

#: How often :func:`until` looks again: short beside every interval the tests use.
POLL = 0.005


async def until(condition: Callable[[], object], *, within: float = 5.0, what: str = "the condition") -> None:
    """Return as soon as ``condition()`` is true; fail the test if it is not within ``within`` seconds."""
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within} s waiting for {what}")
        await asyncio.sleep(POLL)
