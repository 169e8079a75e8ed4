"""The decision after an attempt, as a table; and the session's checks of its own arguments."""

from __future__ import annotations

import httpx
import pytest

from odapi_async import (
    BadRequest,
    ConfigurationError,
    ConnectError,
    GatewayTimeout,
    Hub,
    OpenDental,
    OutcomeUnknown,
    ServerError,
    Throttled,
    Timeout,
    TransportError,
    WriteGatewayTimeout,
)
from odapi_async._request.attempt import Kind, Outcome
from odapi_async._request.decide import Action, decide, error_for
from odapi_async._request.retry import RetryPolicy
from support import BASE

POLICY = RetryPolicy(max_retries=2, base_delay=0.001, max_delay=0.002)


def act(
    outcome: Outcome, *, idempotent: bool, retries: int = 0, fail_over: bool = True, left: float = 60.0
) -> Action:
    return decide(
        outcome,
        idempotent=idempotent,
        retries_done=retries,
        policy=POLICY,
        time_left=left,
        can_fail_over=fail_over,
        max_retry_wait=60.0,
    ).action


def o(kind: Kind, **kw: object) -> Outcome:
    return Outcome(kind, "local", **kw)  # type: ignore[arg-type]


R, F, X = Action.RETRY, Action.FAIL_OVER, Action.RAISE


@pytest.mark.parametrize(
    ("outcome", "idempotent", "retries", "fail_over", "expected"),
    [
        # Never left: fail over at once, even a write; else retry; then raise.
        (o(Kind.NOT_SENT), False, 0, True, F),
        (o(Kind.NOT_SENT), False, 0, False, R),
        (o(Kind.NOT_SENT), True, 2, False, X),
        # Left and lost: reads retry, then fail over; writes are never sent again.
        (o(Kind.LOST), True, 0, True, R),
        (o(Kind.LOST), True, 2, True, F),
        (o(Kind.LOST), True, 2, False, X),
        (o(Kind.LOST), False, 0, True, X),
        # Throttle answers: a real 429 may re-send anything; text alone only reads.
        (o(Kind.THROTTLED, status=429, real_429=True), False, 0, True, R),
        (o(Kind.THROTTLED, status=400, text="rate limit"), False, 0, True, X),
        (o(Kind.THROTTLED, status=400, text="rate limit"), True, 0, True, R),
        (o(Kind.THROTTLED, status=429, real_429=True, retry_after=3600.0), True, 0, True, X),
        (o(Kind.THROTTLED, status=429, real_429=True), True, 2, True, X),
        # Statuses: 401 everywhere raised; 5xx retried then failed over for reads; writes raised.
        (o(Kind.STATUS, status=401), True, 0, True, X),
        (o(Kind.STATUS, status=504), True, 0, True, R),
        (o(Kind.STATUS, status=504), True, 2, True, F),
        (o(Kind.STATUS, status=504), False, 0, True, X),
        (o(Kind.STATUS, status=504), False, 0, False, X),
        (o(Kind.STATUS, status=400, text="The eConnector is not running"), True, 2, True, F),
        (o(Kind.STATUS, status=400, text="PatNum is invalid"), True, 0, True, X),
        (o(Kind.STATUS, status=302, text="redirect to x"), True, 0, True, X),
    ],
)
def test_decision_table(
    outcome: Outcome, idempotent: bool, retries: int, fail_over: bool, expected: Action
) -> None:
    assert act(outcome, idempotent=idempotent, retries=retries, fail_over=fail_over) is expected


def test_a_retry_that_would_end_past_the_budget_is_not_begun() -> None:
    assert act(o(Kind.LOST), idempotent=True, left=0.0, fail_over=False) is X
    assert act(o(Kind.THROTTLED, status=429, real_429=True, retry_after=5.0), idempotent=True, left=1.0) is X


def test_errors_name_what_happened() -> None:
    assert isinstance(
        error_for(o(Kind.NOT_SENT, failure="ConnectError: refused"), "GET", "/p", idempotent=True),
        ConnectError,
    )
    lost_write = error_for(o(Kind.LOST, failure="ReadError: reset"), "POST", "/commlogs", idempotent=False)
    assert isinstance(lost_write, OutcomeUnknown) and "not sent again" in str(lost_write)
    assert isinstance(error_for(o(Kind.LOST, timed_out=True), "GET", "/p", idempotent=True), Timeout)
    assert type(error_for(o(Kind.LOST), "GET", "/p", idempotent=True)) is TransportError
    throttled = error_for(o(Kind.THROTTLED, status=429, retry_after=7.0), "GET", "/p", idempotent=True)
    assert isinstance(throttled, Throttled) and throttled.retry_after == 7.0
    read_504 = error_for(o(Kind.STATUS, status=504), "GET", "/p", idempotent=True)
    assert type(read_504) is GatewayTimeout  # a read was retried, and nothing is unknown about it
    assert lost_write.status_code is None  # no answer came


def test_a_504_to_a_write_is_an_outcome_unknown_carrying_the_status() -> None:
    # The docs: 504 = the request ran past the 60 s limit, so the write may have run.
    answer = o(Kind.STATUS, status=504, text="Request timed out.")
    for method, path in (("POST", "/commlogs"), ("PUT", "/appointments/18/Note")):
        error = error_for(answer, method, path, idempotent=False)
        assert type(error) is WriteGatewayTimeout
        assert isinstance(error, OutcomeUnknown) and isinstance(error, TransportError)
        assert isinstance(error, GatewayTimeout)  # `except GatewayTimeout` written for the 504 still sees it
        assert error.status_code == 504 and error.explanation == "Request timed out."
        assert (error.method, error.path, error.mode) == (method, path, "local")
        assert str(error).startswith(f"504 {method} {path} [local]: Request timed out.")
        assert "may have run" in str(error) and "not sent again" in str(error)
    # Only the 504 says "ran past the limit": a write's other statuses keep their classes.
    assert type(error_for(o(Kind.STATUS, status=500), "POST", "/p", idempotent=False)) is ServerError
    assert type(error_for(o(Kind.STATUS, status=400), "POST", "/p", idempotent=False)) is BadRequest


# -- arguments are checked at construction, naming the argument ---------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "names"),
    [
        ({"max_retries": "3"}, "max_retries"),
        ({"max_retries": True}, "max_retries"),
        ({"timeout": "30"}, "timeout"),
        ({"timeout": 0}, "timeout"),
        ({"connect_timeout": -1}, "connect_timeout"),
        ({"endpoints": {"local": "127.0.0.1:9/api/v1"}}, "endpoints['local']"),
        ({"endpoints": {"local": "ftp://host/api/v1"}}, "endpoints['local']"),
        ({"endpoints": {"cloud": "http://x/api/v1"}}, "unknown mode"),
        ({"modes": "local"}, "modes"),
        ({"modes": ("local", "local")}, "modes"),
        ({"tier": "gold"}, "tier"),
        ({"priority": "urgent"}, "priority"),
        ({"max_in_flight": 0}, "max_in_flight"),
        ({"max_retry_wait": float("nan")}, "max_retry_wait"),
        ({"max_response_bytes": 0}, "max_response_bytes"),
        ({"service_host": "http://x/"}, "service_host"),
        ({"read_ahead": -1}, "read_ahead"),
        ({"probe_timeout": 0}, "probe_timeout"),
    ],
)
def test_bad_arguments_raise_configuration_error_naming_them(kwargs: dict[str, object], names: str) -> None:
    with pytest.raises(ConfigurationError, match=names.replace("[", r"\[")):
        OpenDental("dev", "cust", hub=Hub(), **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "path", ["../../x", "/patients/../../admin", "%2e%2e/x", "http://evil.test/x", "//evil.test/x", "a\\b"]
)
async def test_request_paths_stay_under_the_api_root(mock_api, path: str) -> None:
    route = mock_api.route().mock(return_value=httpx.Response(200, json={}))
    od = OpenDental("dev", "cust", endpoints={"local": BASE}, modes=("local",), hub=Hub())
    with pytest.raises(ConfigurationError):
        await od.request("GET", path)
    assert route.call_count == 0
    await od.aclose()
