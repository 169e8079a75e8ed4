"""The safety margin: how much later than ``T`` after the previous start the next request of a key may leave.

The server measures *arrivals*; the client controls *departures*. Request A leaves at ``s_A`` and arrives at
``s_A + u_A``; B arrives at ``s_B + u_B``; spacing ``>= T`` needs ``s_B - s_A >= T + (u_A - u_B)``. A fixed
margin must cover the whole one-way jitter span J on every request, which caps the rate at ``1 / (T + J)``. We
measure instead. A's round trip (departure to the end of the slot) is ``u_A + rest_A``; its excess over the
smallest round trip seen lately bounds how much later A arrived than the fastest possible arrival, which is the
earliest B can arrive. So once A has completed, B may leave at ``s_A + T + (rtt_A - est_min) + floor``:
``est_min`` is the minimum of the last 32 round trips lowered by ``span / sqrt(n)``: B may beat every sample
seen, and a round trip is the sum of two delays that vary apart (there and back), so the smallest sum seen
sits well above the smallest possible (for two uniform spreads, about ``span / 9`` above it when n = 32, often
more). ``span / (n - 1)``, the estimate for one spread, let B's fast way up after A's fast way back through
about once in 20 runs of 50 requests with jitter both ways. ``floor`` (2 ms) absorbs timer and loop granularity.

Until four round trips are known, or while the previous request has not completed (``max_in_flight > 1``, or it
failed), the margin is the full spread seen (50 ms at first). The extra is capped at
``min(100 ms, max(50 ms, T / 2))``: a slow *execution* looks like jitter to the client, and must not stall the
key. A throttle answer on a key whose tier is already known widens the floor by 10 ms. ``safety_margin=``
replaces all this with a fixed margin. Measured (P1 in ``benchmarks/bench_throttle.py``, 21..39 ms each way,
T = 0.2 s): 0 violations at 0.98 of ``1 / (T + J)``.
"""

from __future__ import annotations

import math
from collections import deque

WINDOW = 32  # round trips remembered per key
MIN_SAMPLES = 4  # below this the per-request estimate is not trusted
INITIAL_MARGIN = 0.05  # before any round trip is known
MAX_EXTRA = 0.1  # the largest one-way jitter defended adaptively (a slow execution looks like jitter)
FLOOR = 0.002  # loop and timer granularity
FLOOR_STEP = 0.01  # widening after a throttle answer the margin should have prevented


class MarginEstimator:
    """Round trips of one key, and the margin they call for."""

    __slots__ = ("_fixed", "_floor", "_rtts")

    def __init__(self, fixed: float | None = None) -> None:
        self._fixed = fixed
        self._floor = FLOOR
        self._rtts: deque[float] = deque(maxlen=WINDOW)

    @property
    def fixed(self) -> float | None:
        return self._fixed

    def set_fixed(self, fixed: float | None) -> None:
        self._fixed = fixed

    def record(self, rtt: float) -> None:
        """A request completed ``rtt`` seconds after it left."""
        self._rtts.append(rtt)

    def widen(self, interval: float) -> None:
        """A throttle answer came although the tier was right: this network needs a wider floor."""
        if self._fixed is None:
            self._floor = min(self._floor + FLOOR_STEP, max(interval / 2, FLOOR))

    def slowest(self) -> float:
        """The slowest recent round trip (0 before any): how long a request of this key may still be running."""
        return max(self._rtts, default=0.0)

    def margin(self, interval: float, last_rtt: float | None) -> float:
        """Extra spacing after the last start; ``last_rtt`` is that request's round trip if it completed."""
        if self._fixed is not None:
            return self._fixed
        if len(self._rtts) < MIN_SAMPLES:
            return max(INITIAL_MARGIN, self._floor)
        span, est_min = self._spread()
        # With the previous round trip unknown (still running, or failed) assume the worst span seen.
        extra = span if last_rtt is None else last_rtt - est_min
        return min(max(extra, 0.0), _cap(interval)) + self._floor

    def terms(self, interval: float) -> tuple[float, float, float, float | None]:
        """The rule's settings, for a throttle that keeps the round trips elsewhere (the Redis script):
        ``(margin before MIN_SAMPLES round trips, cap on the extra, floor, fixed margin or None)``."""
        return INITIAL_MARGIN, _cap(interval), self._floor, self._fixed

    def _spread(self) -> tuple[float, float]:
        """The span of the round trips remembered, and the estimated minimum (``low - span / sqrt(n)``)."""
        rtts = self._rtts
        low, high = min(rtts), max(rtts)
        span = high - low
        return span, low - span / math.sqrt(len(rtts))


def _cap(interval: float) -> float:
    """The largest extra the margin adds: a slow execution looks like jitter and must not stall the key."""
    return min(MAX_EXTRA, max(INITIAL_MARGIN, interval / 2))
