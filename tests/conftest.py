"""Shared fixtures: a session bound to a mocked base URL, its own hub, and fast retries."""

from __future__ import annotations

import os
import warnings
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import pytest_httpx2  # noqa: F401  (registers respx's httpcore2 mocker)
import respx
from redis_support import RedisServer

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
#: Folders whose tests measure real time (spacing and in-flight caps at a server or a clock, elapsed bounds):
#: their tests are marked ``timing``, as is any test elsewhere that says so.
TIMING_FOLDERS = frozenset({"throttle", "redis_throttle"})


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.parent.name in TIMING_FOLDERS:
            item.add_marker(pytest.mark.timing)
        slow = item.get_closest_marker("slow")
        if slow is None:
            continue
        if not slow.args or not isinstance(slow.args[0], str) or not slow.args[0].strip():
            raise pytest.UsageError(f"{item.nodeid}: @pytest.mark.slow needs its reason")
        if item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(SLOW_TIMEOUT))


@pytest.fixture(autouse=True)
def _untraced_when_timing(request: pytest.FixtureRequest) -> Iterator[None]:
    """Under coverage (CI), a ``timing`` test runs untraced: tracing slows the client unevenly, so a throttle
    that spaces its departures exactly shows a gap the server sees shorter, or an elapsed bound is missed."""
    cov: Any = None
    if request.node.get_closest_marker("timing") is not None:
        try:
            import coverage
        except ImportError:  # pragma: no cover - coverage is in the test extra
            pass
        else:
            cov = coverage.Coverage.current()
    if cov is None:
        yield
        return
    cov.stop()
    # The processes it starts run untraced too (coverage's subprocess patch reads this variable).
    config = os.environ.pop("COVERAGE_PROCESS_CONFIG", None)
    try:
        yield
    finally:
        if config is not None:
            os.environ["COVERAGE_PROCESS_CONFIG"] = config
        # A restart would look again for modules imported before it (only to warn), and that look breaks on a
        # module whose __getattr__ answers any name (dlt.common.logger's __path__ is a function): skip it.
        cov._warn_preimported_source = False
        with warnings.catch_warnings():  # restarting re-reports modules imported meanwhile: known, not news
            warnings.simplefilter("ignore")
            cov.start()


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    """A real ``redis-server`` of the test's own (a free port, nothing persisted), stopped after it."""
    server = RedisServer()
    try:
        server.start()
        yield server
    finally:
        server.close()
