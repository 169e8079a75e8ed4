"""When a failed attempt may be tried again, and how long to wait first.

Idempotency is a property of the *operation* (the spec's ``idempotent`` flag), not of the HTTP method: every
POST and the PUTs that append, toggle or create (``appointments.Note``, ``recalls.SwitchType``, ``claims.Split``,
``payments.Partial``…) must not run twice. Such a request is retried only when it provably never reached the
server (the connection was never made) or the server refused it as throttled (a refusal, not an execution).
"""

from __future__ import annotations

import datetime as dt
import email.utils
import math
import random
import re
from dataclasses import dataclass

#: Statuses worth another try for an idempotent operation.
RETRYABLE_STATUS = frozenset({500, 502, 503, 504})

# A 400 with one of these texts is a passing server condition, not a bad request: the docs' "unexpected error"
# seen mid-pagination on large accounts, and the office's eConnector restarting.
_TRANSIENT_400 = re.compile(r"unexpected error|econnector", re.IGNORECASE)

# The docs name no throttle status; servers have been seen to answer 400/503 with such text as well as 429.
_THROTTLE_TEXT = re.compile(r"throttl|too many requests|rate limit", re.IGNORECASE)


def is_throttle_answer(status: int, text: str) -> bool:
    """Whether an answer means "too soon for this key" (the request was refused, not executed)."""
    return status == 429 or (status in (400, 503) and bool(_THROTTLE_TEXT.search(text)))


def is_retryable_status(status: int, text: str) -> bool:
    """Whether an error answer to an *idempotent* operation is worth another try."""
    return status in RETRYABLE_STATUS or (status == 400 and bool(_TRANSIENT_400.search(text)))


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header: delta-seconds, or an HTTP date (RFC 9110 allows both)."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:  # "-0000": UTC by RFC 5322
            when = when.replace(tzinfo=dt.timezone.utc)
        seconds = (when - dt.datetime.now(dt.timezone.utc)).total_seconds()
    if not math.isfinite(seconds):  # "nan" and "inf" parse as floats; neither is a wait
        return None
    return max(0.0, seconds)


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter, bounded in count and in total time.

    ``max_total`` counts from the first failed attempt; a retry whose wait would end past it is not made.
    """

    max_retries: int = 2
    base_delay: float = 0.5
    max_delay: float = 8.0
    max_total: float = 60.0

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait before retry number ``attempt`` (1-based); ``Retry-After`` wins when longer."""
        backoff = random.uniform(0, min(self.max_delay, self.base_delay * 2 ** (attempt - 1)))
        return max(backoff, retry_after or 0.0)
