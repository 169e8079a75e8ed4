"""Retry-After on a throttled answer: whole seconds by default (RFC 9110), milliseconds only when asked for."""

from __future__ import annotations

import httpx2
import pytest
from conftest import headers

from odapi_async.emulator import Emulator
from odapi_async.emulator._throttle import retry_after_header

pytestmark = [pytest.mark.integration]
async_test = pytest.mark.asyncio(loop_scope="session")


@pytest.mark.parametrize(
    ("wait", "whole", "fractional"),
    [
        (0.0004, "1", "0.001"),
        (0.048, "1", "0.048"),
        (1.0, "1", "1.000"),
        (1.2, "2", "1.200"),
        (4.999, "5", "4.999"),
    ],
)
def test_retry_after_values(wait: float, whole: str, fractional: str) -> None:
    assert retry_after_header(wait) == whole
    assert retry_after_header(wait, fractional=True) == fractional


async def _refused(emu: Emulator) -> httpx2.Response:
    url = emu.endpoints["remote"] + "/patients"
    async with httpx2.AsyncClient(timeout=5.0) as c:
        first = await c.get(url, params={"Limit": 1}, headers=headers("k"))
        assert first.status_code == 200
        second = await c.get(url, params={"Limit": 1}, headers=headers("k"))
    assert second.status_code == 429
    return second


@async_test
async def test_default_retry_after_is_whole_seconds_that_standard_clients_accept() -> None:
    async with Emulator(
        patients=5, developer_key="dev", customer_keys={"k": "full"}, intervals={"full": 2.5}
    ) as emu:
        r = await _refused(emu)
    value = r.headers["Retry-After"]
    assert value.isdigit() and 1 <= int(value) <= 3
    urllib3 = pytest.importorskip("urllib3")
    retry = urllib3.util.Retry(total=1, respect_retry_after_header=True)
    assert retry.parse_retry_after(value) == int(value)


@async_test
async def test_fractional_retry_after_is_an_opt_in() -> None:
    async with Emulator(
        patients=5,
        developer_key="dev",
        customer_keys={"k": "full"},
        intervals={"full": 0.5},
        fractional_retry_after=True,
    ) as emu:
        r = await _refused(emu)
    value = float(r.headers["Retry-After"])
    assert 0 < value <= 0.5
    assert r.headers["Retry-After"] != "1"
