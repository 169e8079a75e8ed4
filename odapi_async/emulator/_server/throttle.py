"""Server-side throttle of the Remote listener, per customer key.

The docs say the interval includes the execution of the request, so a request is refused when it arrives
sooner than the interval after the previous *accepted* request's arrival, or while that request is still
executing. Refused requests do not move the clock (they were never executed).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

DEFAULT_INTERVALS: dict[str, float] = {"read_all": 5.0, "full": 1.0, "enterprise": 0.5}
#: Retry-After given while the previous request is still running past its interval.
_BUSY_RETRY = 0.05


@dataclass
class _KeyState:
    last_arrival: float = float("-inf")
    in_flight: int = 0


class RemoteThrottle:
    """Arrival-time throttle: ``admit`` before handling, ``release`` when the answer is sent."""

    def __init__(self, intervals: dict[str, float] | None = None) -> None:
        self.intervals: dict[str, float] = dict(DEFAULT_INTERVALS)
        if intervals:
            self.intervals.update(intervals)
        self._state: dict[str, _KeyState] = {}

    def interval(self, tier: str) -> float:
        return self.intervals.get(tier, self.intervals["full"])

    def admit(self, key: str, tier: str, now: float) -> float | None:
        """Accept (None) or refuse with the seconds the client should wait."""
        st = self._state.get(key)
        if st is None:
            st = self._state[key] = _KeyState()
        remaining = st.last_arrival + self.interval(tier) - now
        if remaining > 0 or st.in_flight:
            return max(remaining, _BUSY_RETRY if st.in_flight else 0.001)
        st.last_arrival = now
        st.in_flight += 1
        return None

    def release(self, key: str) -> None:
        st = self._state.get(key)
        if st is not None and st.in_flight:
            st.in_flight -= 1


def retry_after_header(wait: float, *, fractional: bool = False) -> str:
    """The ``Retry-After`` value for a refusal ``wait`` seconds early.

    RFC 9110 allows only whole seconds (or an HTTP date), and standard clients (urllib3, requests) reject
    anything else, so the default is the wait rounded up, at least 1. ``fractional`` (an opt-in for fast
    tests with intervals far below a second) sends milliseconds instead, e.g. ``0.048``.
    """
    if fractional:
        return f"{max(wait, 0.001):.3f}"
    return str(max(1, math.ceil(wait)))
