"""The settings of one view's requests: :class:`RequestOptions`, one record, checked once.

The session builds it from its arguments, ``with_options`` derives another from it, and an attempt reads its
timeout, deadline, priority, wait cap and size cap from it: there is no second copy of any of them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import httpx2

from odapi_async._request.retry import RetryPolicy
from odapi_async._settings import Priority

__all__ = ["CONNECT_TIMEOUT", "MAX_RESPONSE_BYTES", "READ_AHEAD", "RequestOptions", "total_deadline"]

#: The connect phase when no timeout says otherwise (seconds).
CONNECT_TIMEOUT = 5.0
#: Pages fetched ahead of the one being read, on unthrottled modes.
READ_AHEAD = 3
#: The default cap on one answer's body.
MAX_RESPONSE_BYTES = 64 * 1024 * 1024
#: What a probe may take at least (seconds): its connect phase is the session's ``probe_timeout``.
PROBE_TOTAL = 5.0


def total_deadline(timeout: float | httpx2.Timeout) -> float:
    """The attempt's total deadline: the number given, or the longest phase of an httpx2.Timeout."""
    if isinstance(timeout, httpx2.Timeout):
        phases = [t for t in (timeout.connect, timeout.read, timeout.write, timeout.pool) if t is not None]
        return max(phases) if phases else math.inf
    return float(timeout)


@dataclass(frozen=True)
class RequestOptions:
    """Per-view settings (``with_options`` changes these and shares everything else)."""

    timeout: httpx2.Timeout
    total: float  # seconds for connect + send + the whole answer
    retry: RetryPolicy
    priority: Priority
    max_retry_wait: float
    max_response_bytes: int
    read_ahead: int

    @property
    def connect_timeout(self) -> float:
        """The connect phase, kept when only the timeout's number changes (``with_options(timeout=...)``)."""
        return self.timeout.connect or CONNECT_TIMEOUT

    def with_connect(self, probe_timeout: float | None) -> RequestOptions:
        """These options with the connect phase no longer than ``probe_timeout`` (a mode not yet seen
        answering); unchanged for ``None``."""
        timeout = self.timeout
        if probe_timeout is None or (timeout.connect is not None and timeout.connect <= probe_timeout):
            return self
        shorter = httpx2.Timeout(
            connect=probe_timeout, read=timeout.read, write=timeout.write, pool=timeout.pool
        )
        return replace(self, timeout=shorter)

    @classmethod
    def for_probe(cls, probe_timeout: float) -> RequestOptions:
        """A probe's options: a short connect, a small answer, no retry, no waiting, ahead of bulk work."""
        total = max(probe_timeout, PROBE_TOTAL)
        return cls(
            timeout=httpx2.Timeout(total, connect=probe_timeout),
            total=total,
            retry=RetryPolicy(max_retries=0),
            priority="interactive",
            max_retry_wait=0.0,
            max_response_bytes=1 << 20,
            read_ahead=0,
        )
