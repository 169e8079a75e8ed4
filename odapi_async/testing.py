"""pytest plugin (entry point ``pytest11``): fixtures that run the emulator for your own tests.

``od_emulator`` starts a fresh :class:`~odapi_async.emulator.Emulator` for each test (seed 1, 200 patients,
developer key ``dev``, customer keys ``cust-full`` (tier full) and ``cust-ro`` (tier read_all), remote throttle
intervals shortened to 0.05 s and 0.25 s). ``od_session`` is an :class:`~odapi_async.OpenDental` session bound
to its local listener. Both are async fixtures: run your tests with pytest-asyncio (``asyncio_mode = "auto"``).
:func:`make_emulator` builds an emulator with the same defaults, any of them changed, for fixtures of your own.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from odapi_async.emulator import Emulator

try:
    import pytest_asyncio

    _async_fixture: Any = pytest_asyncio.fixture
except ImportError:  # pragma: no cover - without pytest-asyncio the fixtures cannot run anyway
    _async_fixture = pytest.fixture

TEST_DEVELOPER_KEY = "dev"
TEST_CUSTOMER_KEYS = {"cust-full": "full", "cust-ro": "read_all"}
TEST_INTERVALS = {"full": 0.05, "read_all": 0.25}


def make_emulator(**overrides: Any) -> Emulator:
    """An emulator (not started) with ``od_emulator``'s settings; ``overrides`` are :class:`Emulator` arguments.

    ``make_emulator(patients=50, fractional_retry_after=True)`` keeps the test keys and short intervals;
    start it with ``async with`` or ``.in_thread()``.
    """
    from odapi_async.emulator import Emulator

    settings: dict[str, Any] = {
        "seed": 1,
        "patients": 200,
        "developer_key": TEST_DEVELOPER_KEY,
        "customer_keys": dict(TEST_CUSTOMER_KEYS),
        "intervals": dict(TEST_INTERVALS),
    }
    settings.update(overrides)
    return Emulator(**settings)


@_async_fixture  # type: ignore[untyped-decorator,unused-ignore]
async def od_emulator() -> AsyncIterator[Emulator]:
    """A running emulator, new for each test."""
    async with make_emulator() as emu:
        yield emu


@_async_fixture  # type: ignore[untyped-decorator,unused-ignore]
async def od_session(od_emulator: Emulator) -> AsyncIterator[Any]:
    """An ``OpenDental`` session (customer key ``cust-full``) talking to ``od_emulator``'s local listener."""
    from odapi_async import OpenDental

    async with OpenDental(
        developer_key=TEST_DEVELOPER_KEY,
        customer_key="cust-full",
        endpoints=od_emulator.endpoints,
        modes=("local",),
    ) as od:
        yield od
