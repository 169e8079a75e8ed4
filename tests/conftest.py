"""Shared fixtures: a session bound to a mocked base URL, its own hub, and fast retries."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
import pytest_httpx2  # noqa: F401  (registers respx's httpcore2 mocker)
import respx

from odapi_async import Hub, OpenDental
from support import BASE, CUST_KEY, DEV_KEY, fast_retries

pytest_plugins = ["pytester"]


@pytest.fixture
def mock_api() -> Iterator[respx.Router]:
    with respx.mock(using="httpcore2", base_url=BASE, assert_all_called=False) as router:
        yield router


@pytest.fixture
async def od() -> AsyncIterator[OpenDental]:
    session = OpenDental(DEV_KEY, CUST_KEY, endpoints={"local": BASE}, modes=("local",), hub=Hub())
    async with fast_retries(session) as s:
        yield s


#: The timeout of a test marked ``@pytest.mark.slow("why")`` (the default, in pyproject.toml, is 20 s).
SLOW_TIMEOUT = 60


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        slow = item.get_closest_marker("slow")
        if slow is None:
            continue
        if not slow.args or not isinstance(slow.args[0], str) or not slow.args[0].strip():
            raise pytest.UsageError(f"{item.nodeid}: @pytest.mark.slow needs its reason")
        if item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(SLOW_TIMEOUT))
