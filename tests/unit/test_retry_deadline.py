"""The retry budget: Retry-After as seconds or a date, a wait past the deadline not begun, queueing not counted."""

from __future__ import annotations

import asyncio
import email.utils
import time
from dataclasses import replace

import httpx
import pytest

from odapi_async import ServerError, Throttled
from odapi_async._request.retry import parse_retry_after


def test_retry_after_forms() -> None:
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after("-1") == 0.0
    assert parse_retry_after(None) is None and parse_retry_after("soon") is None
    assert parse_retry_after("inf") is None and parse_retry_after("nan") is None
    in_30s = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert parse_retry_after(in_30s) == pytest.approx(30, abs=2)
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # in the past: go now


async def test_retry_after_past_the_deadline_gives_up_at_once(od, mock_api) -> None:
    # Retries are bounded in total time (60 s by default): a 120 s Retry-After is not slept through.
    route = mock_api.get("/patients/1").mock(
        return_value=httpx.Response(503, headers={"Retry-After": "120"}, text="busy")
    )
    started = time.monotonic()
    with pytest.raises(ServerError):
        await asyncio.wait_for(od.patients.get(1), 5)
    assert route.call_count == 1 and time.monotonic() - started < 1


async def test_throttle_retry_after_past_the_deadline_raises_throttled(od, mock_api) -> None:
    route = mock_api.get("/patients/1").mock(
        return_value=httpx.Response(429, headers={"Retry-After": "3600"}, text="Too many requests")
    )
    with pytest.raises(Throttled) as err:
        await asyncio.wait_for(od.patients.get(1), 5)
    assert route.call_count == 1 and err.value.retry_after == 3600


async def test_time_queued_for_the_throttle_is_not_retry_time(od, mock_api) -> None:
    # The budget starts at the first failure: a request that queued behind others longer than max_total
    # still gets its retries.
    options = od._requests.options
    od._requests = od._requests.with_options(replace(options, retry=replace(options.retry, max_total=0.2)))
    route = mock_api.get("/patients/1").mock(
        side_effect=[httpx.Response(504, text="timeout"), httpx.Response(200, json={"PatNum": 1})]
    )
    throttle = od._core.hub.throttle.key("local", od.key_id)
    held = [throttle.slot() for _ in range(throttle.max_in_flight)]
    for slot in held:
        await slot.__aenter__()
    call = asyncio.ensure_future(od.patients.get(1))
    await asyncio.sleep(0.3)  # the request waits its turn, longer than max_total
    assert not call.done() and route.call_count == 0
    for slot in held:
        await slot.__aexit__(None, None, None)
    assert (await call).PatNum == 1
    assert route.call_count == 2
