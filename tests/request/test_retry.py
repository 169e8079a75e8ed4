"""Status → exception mapping, the retry policy, Retry-After, and keys never leaking."""

from __future__ import annotations

import asyncio
import email.utils
import logging
import time
import traceback
from dataclasses import replace

import httpcore2
import httpx
import pytest

from odapi_async import (
    BadRequest,
    ConnectError,
    GatewayTimeout,
    Gone,
    NotFound,
    OpenDentalError,
    OutcomeUnknown,
    ServerError,
    Throttled,
    TransportError,
    Unauthorized,
)
from odapi_async._request.retry import parse_retry_after
from support import CUST_KEY, DEV_KEY


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, BadRequest),
        (401, Unauthorized),
        (404, NotFound),
        (410, Gone),
        (500, ServerError),
        (504, GatewayTimeout),
    ],
)
async def test_status_maps_to_exception_with_explanation(od, mock_api, status, cls) -> None:
    mock_api.post("/commlogs").mock(return_value=httpx.Response(status, text="Patient not found"))
    with pytest.raises(cls) as err:
        await od.commlogs.create(PatNum=48, Note="called")
    exc = err.value
    assert exc.status_code == status
    assert exc.explanation == "Patient not found"
    assert exc.method == "POST" and exc.path == "/commlogs" and exc.mode == "local"
    assert "Patient not found" in str(exc)


async def test_json_string_explanation_is_unquoted(od, mock_api) -> None:
    mock_api.get("/patients/9").mock(return_value=httpx.Response(404, json="Patient not found."))
    with pytest.raises(NotFound, match=r"Patient not found\.$"):
        await od.patients.get(9)


async def test_get_retried_on_504(od, mock_api) -> None:
    route = mock_api.get("/patients/1").mock(
        side_effect=[httpx.Response(504, text="timeout"), httpx.Response(200, json={"PatNum": 1})]
    )
    pat = await od.patients.get(1)
    assert pat.PatNum == 1 and route.call_count == 2


async def test_get_retried_on_connection_reset(od, mock_api) -> None:
    route = mock_api.get("/patients/1").mock(
        side_effect=[httpcore2.ReadError("connection reset"), httpx.Response(200, json={"PatNum": 1})]
    )
    assert (await od.patients.get(1)).PatNum == 1
    assert route.call_count == 2


async def test_get_gives_up_after_max_retries(od, mock_api) -> None:
    route = mock_api.get("/patients/1").mock(return_value=httpx.Response(504, text="timeout"))
    with pytest.raises(GatewayTimeout):
        await od.patients.get(1)
    assert route.call_count == 3  # first try + max_retries (2)


async def test_transient_400_on_a_page_is_retried(od, mock_api) -> None:
    route = mock_api.get("/patients").mock(
        side_effect=[httpx.Response(400, text="An unexpected error occurred."), httpx.Response(200, json=[])]
    )
    assert await od.patients.list().collect() == []
    assert route.call_count == 2


async def test_post_not_retried_on_504_or_reset(od, mock_api) -> None:
    route = mock_api.post("/commlogs").mock(return_value=httpx.Response(504, text="timeout"))
    with pytest.raises(OutcomeUnknown) as unknown:  # past the 60 s limit, the POST may have run
        await od.commlogs.create(PatNum=48, Note="called")
    assert unknown.value.status_code == 504 and isinstance(unknown.value, GatewayTimeout)
    assert route.call_count == 1
    mock_api.reset()
    route = mock_api.post("/commlogs").mock(side_effect=httpcore2.ReadError("reset"))
    with pytest.raises(TransportError) as err:
        await od.commlogs.create(PatNum=48, Note="called")
    assert not isinstance(err.value, ConnectError)
    assert route.call_count == 1


async def test_non_idempotent_put_not_retried(od, mock_api) -> None:
    # appointments.Note appends: a retry after a 504 could append twice.
    route = mock_api.put("/appointments/18/Note").mock(return_value=httpx.Response(504, text="timeout"))
    with pytest.raises(OutcomeUnknown):
        await od.appointments.Note(18, Note="late")
    assert route.call_count == 1
    mock_api.reset()
    route = mock_api.put("/appointments/18/Note").mock(side_effect=httpcore2.ReadError("reset"))
    with pytest.raises(TransportError):
        await od.appointments.Note(18, Note="late")
    assert route.call_count == 1


async def test_idempotent_put_is_retried(od, mock_api) -> None:
    route = mock_api.put("/appointments/18").mock(
        side_effect=[httpx.Response(504), httpx.Response(200, json={"AptNum": 18})]
    )
    assert (await od.appointments.update(18, Note="x")).AptNum == 18
    assert route.call_count == 2


async def test_post_retried_when_it_never_left(od, mock_api) -> None:
    route = mock_api.post("/commlogs").mock(
        side_effect=[httpcore2.ConnectError("refused"), httpx.Response(201, json={"CommlogNum": 7})]
    )
    assert (await od.commlogs.create(PatNum=48, Note="called")).CommlogNum == 7
    assert route.call_count == 2


async def test_connect_error_surfaces_after_retries(od, mock_api) -> None:
    mock_api.get("/patients/1").mock(side_effect=httpcore2.ConnectError("refused"))
    with pytest.raises(ConnectError):
        await od.patients.get(1)


async def test_throttle_answer_retried_even_for_post_and_retry_after_honoured(od, mock_api) -> None:
    # A throttle answer is a refusal, not an execution: even a POST goes again, after Retry-After.
    times: list[float] = []

    def answer(request):
        times.append(time.monotonic())
        if len(times) == 1:
            return httpx.Response(429, headers={"Retry-After": "0.3"}, text="Too many requests")
        return httpx.Response(201, json={"CommlogNum": 7})

    mock_api.post("/commlogs").mock(side_effect=answer)
    assert (await od.commlogs.create(PatNum=48, Note="x")).CommlogNum == 7
    assert len(times) == 2
    assert times[1] - times[0] >= 0.29


async def test_retry_after_honoured_on_503(od, mock_api) -> None:
    times: list[float] = []

    def answer(request):
        times.append(time.monotonic())
        if len(times) == 1:
            return httpx.Response(503, headers={"Retry-After": "0.25"}, text="busy")
        return httpx.Response(200, json={"PatNum": 1})

    mock_api.get("/patients/1").mock(side_effect=answer)
    await od.patients.get(1)
    assert times[1] - times[0] >= 0.24


async def test_throttled_after_retries_run_out(od, mock_api) -> None:
    route = mock_api.get("/patients/1").mock(
        return_value=httpx.Response(429, headers={"Retry-After": "0.01"}, text="Too many requests")
    )
    with pytest.raises(Throttled) as err:
        await od.patients.get(1)
    assert route.call_count == 3
    assert err.value.retry_after == pytest.approx(0.01)


async def test_400_with_throttle_text_is_a_throttle_answer(od, mock_api) -> None:
    route = mock_api.get("/patients/1").mock(
        side_effect=[
            httpx.Response(400, text="Request was throttled."),
            httpx.Response(200, json={"PatNum": 1}),
        ]
    )
    assert (await od.patients.get(1)).PatNum == 1
    assert route.call_count == 2


async def test_keys_never_appear_in_errors_reprs_tracebacks_or_logs(od, mock_api, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    mock_api.get("/patients/1").mock(return_value=httpx.Response(401, text="Invalid customer key."))
    mock_api.get("/patients/2").mock(side_effect=httpcore2.ConnectError("refused"))
    mock_api.get("/patients/3").mock(return_value=httpx.Response(200, text="{not json"))
    texts = [repr(od), str(od), repr(od.patients)]
    for pat_num in (1, 2, 3):
        with pytest.raises(OpenDentalError) as err:
            await od.patients.get(pat_num)
        exc = err.value
        texts += [str(exc), repr(exc), "".join(traceback.format_exception(exc)), repr(vars(exc))]
    texts.append(caplog.text)
    texts.append(repr(vars(od)))
    blob = "\n".join(texts)
    assert "Invalid customer key" in blob  # the check looks at real output
    assert DEV_KEY not in blob and CUST_KEY not in blob


# ----------------------------------------------------------------------------------------------------
# Folded in from tests/unit/test_retry_deadline.py: The retry budget: Retry-After as seconds or a date, a wait past the deadline not begun, queueing not counted.


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
