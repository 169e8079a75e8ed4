"""After an attempt: send it again, fail over to the next mode, or raise — and the error to raise.

The rules (``docs/architecture.md``, "The request path"; ``docs/errors.md``):

* a throttle refusal was not executed: it is sent again after the key's hold, but a write only after a real 429
  (a 400/503 whose text mentions throttling is raised, never re-sent); a ``Retry-After`` longer than
  ``max_retry_wait`` raises :class:`~odapi_async.Throttled` at once;
* a failure before the request left fails over to the next mode at once, even for a write, else is retried;
* an idempotent operation that failed after leaving (reset, timeout, 5xx, eConnector down) is retried with
  backoff, then may fail over; a write that may have reached the server is never sent again, anywhere;
* 401 is raised on every mode (a wrong key is wrong everywhere); other statuses are raised, and a 504 to a
  write as :class:`~odapi_async.WriteGatewayTimeout` (an ``OutcomeUnknown``: past the 60 s limit it may have run).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from odapi_async._exceptions import (
    ConnectError,
    OpenDentalError,
    OutcomeUnknown,
    Throttled,
    Timeout,
    TransportError,
    WriteGatewayTimeout,
    status_error_class,
)
from odapi_async._request.attempt import Kind, Outcome
from odapi_async._request.retry import RetryPolicy, is_retryable_status

__all__ = ["Action", "Decision", "decide", "error_for"]


class Action(enum.Enum):
    RETRY = "retry"
    FAIL_OVER = "fail_over"
    RAISE = "raise"


@dataclass(frozen=True)
class Decision:
    action: Action
    delay: float = 0.0
    front: bool = False  # queue at the front of the lane (a refusal sent again)


_RAISE = Decision(Action.RAISE)
_FAIL_OVER = Decision(Action.FAIL_OVER)


def decide(
    outcome: Outcome,
    *,
    idempotent: bool,
    retries_done: int,
    policy: RetryPolicy,
    time_left: float,
    can_fail_over: bool,
    max_retry_wait: float,
) -> Decision:
    """What to do after a failed attempt (``outcome`` is not an answer). ``time_left``: the retry budget."""
    kind = outcome.kind
    more = retries_done < policy.max_retries
    if kind is Kind.THROTTLED:
        wait = outcome.retry_after or 0.0
        if wait > max_retry_wait or not (idempotent or outcome.real_429):
            return _RAISE
        # The throttle already holds the key for the wait; the refused request goes first when it ends.
        return Decision(Action.RETRY, front=True) if more and wait <= time_left else _RAISE
    if kind is Kind.NOT_SENT:
        if can_fail_over:
            return _FAIL_OVER
        return _backoff(policy, retries_done, time_left) if more else _RAISE
    if kind is Kind.LOST:
        if not idempotent:
            return _RAISE
        if more:
            retry = _backoff(policy, retries_done, time_left)
            if retry.action is Action.RETRY:
                return retry
        return _FAIL_OVER if can_fail_over else _RAISE
    # An error status.
    if outcome.status == 401 or not idempotent or not is_retryable_status(outcome.status, outcome.text):
        return _RAISE
    if (outcome.retry_after or 0.0) > max_retry_wait:
        return _RAISE
    if more:
        retry = _backoff(policy, retries_done, time_left, outcome.retry_after)
        if retry.action is Action.RETRY:
            return retry
    return _FAIL_OVER if can_fail_over else _RAISE


def _backoff(
    policy: RetryPolicy, retries_done: int, time_left: float, retry_after: float | None = None
) -> Decision:
    delay = policy.delay(retries_done + 1, retry_after)
    return Decision(Action.RETRY, delay=delay) if delay <= time_left else _RAISE


def error_for(outcome: Outcome, method: str, path: str, *, idempotent: bool) -> OpenDentalError:
    """The exception that reports ``outcome`` (never holding a key, nor chained to one that does)."""
    mode = outcome.mode
    if outcome.kind is Kind.THROTTLED:
        throttled = Throttled(
            retry_after=outcome.retry_after,
            status_code=outcome.status,
            method=method,
            path=path,
            mode=mode,
            explanation=outcome.text,
        )
        throttled.headers = outcome.headers
        return throttled
    if outcome.kind is Kind.STATUS:
        # The docs: a 504 means the request ran past the 60 s limit, so a write may have run.
        write_504 = outcome.status == 504 and not idempotent
        status_cls = WriteGatewayTimeout if write_504 else status_error_class(outcome.status)
        error = status_cls(
            status_code=outcome.status, method=method, path=path, mode=mode, explanation=outcome.text
        )
        error.headers = outcome.headers
        return error
    message = f"{method} {path} [{mode}]: {outcome.failure}"
    if outcome.kind is Kind.NOT_SENT:
        return ConnectError(message, method=method, path=path, mode=mode)
    if not idempotent:
        return OutcomeUnknown(
            message + "; it may have reached the server, so it was not sent again",
            method=method,
            path=path,
            mode=mode,
        )
    error_cls = Timeout if outcome.timed_out else TransportError
    return error_cls(message, method=method, path=path, mode=mode)
