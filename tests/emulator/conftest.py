"""Fixtures for the emulator's own integration tests: one emulator for the whole session (real sockets)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx2
import pytest
import pytest_asyncio
from emulators import emulator_fixture

DEV = "dev"
KEYS = {"cust-full": "full", "cust-ro": "read_all", "cust-ent": "enterprise", "cust-fault": "full"}
INTERVALS = {"full": 0.05, "read_all": 0.25, "enterprise": 0.0}


def headers(cust: str = "cust-full") -> dict[str, str]:
    return {"Authorization": f"ODFHIR {DEV}/{cust}", "Content-Type": "application/json"}


emu = emulator_fixture(
    scope="session",
    seed=1,
    patients=200,
    developer_key=DEV,
    customer_keys=KEYS,
    intervals=INTERVALS,
    fractional_retry_after=True,  # the default (whole seconds) has its own test
)


@pytest_asyncio.fixture(loop_scope="session", scope="session")
async def client() -> AsyncIterator[httpx2.AsyncClient]:
    async with httpx2.AsyncClient(timeout=10.0) as c:
        yield c


def pytest_collection_modifyitems(config, items):
    if config.pluginmanager.has_plugin("odapi_async"):
        return
    skip = pytest.mark.skip(reason="odapi_async is not installed: its pytest11 plugin is not registered")
    for item in items:
        if "od_session" in getattr(item, "fixturenames", ()):
            item.add_marker(skip)
