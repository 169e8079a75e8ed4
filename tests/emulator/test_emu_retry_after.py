"""Retry-After on a throttled answer: whole seconds by default (RFC 9110), milliseconds only when asked for."""

from __future__ import annotations

import httpx2
import pytest
from conftest import headers

from odapi_async.emulator import Emulator
from odapi_async.emulator._server.throttle import retry_after_header

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


@async_test
async def test_the_sdk_honours_a_whole_second_retry_after() -> None:
    """The SDK believes the interval is 10 ms, the server enforces 0.5 s: its second request is refused with
    `Retry-After: 1`, and it waits that second before sending it again (measured at the server)."""
    from odapi_async import Hub, OpenDental

    async with Emulator(
        patients=5, developer_key="dev", customer_keys={"k": "full"}, intervals={"full": 0.5}
    ) as emu:
        od = OpenDental(
            "dev",
            "k",
            endpoints=emu.endpoints,
            modes=("remote",),
            tier="full",
            intervals={"full": 0.01},
            max_retries=3,
            hub=Hub(),
        )
        async with od:
            await od.request("GET", "/patients", params={"Limit": 1})
            await od.request("GET", "/patients", params={"Limit": 1})
        remote = emu.stats()["keys"][emu.key_id("k")]["listeners"]["remote"]
    assert remote["violations"] == 1
    first, second = remote["accepted_arrivals"]
    refused = [t for t in remote["arrivals"] if t not in remote["accepted_arrivals"]]
    assert len(refused) == 1
    assert second - refused[0] >= 1.0 - 0.05  # waited the whole second it was told, not its own 10 ms
