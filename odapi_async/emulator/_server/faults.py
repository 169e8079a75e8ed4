"""Fault injection per listener: latency, 504s, connection resets and "eConnector not running" answers.

Two faults let the request run first: ``reset_after`` and ``504_after`` execute the handler (a POST stores its
row) and then lose the answer, the case a client cannot tell from a request that never arrived.

One seeded :class:`random.Random` per listener makes a sequence of requests meet the same faults on every run.
A single draw per request picks at most one fault, so configured rates are exclusive and add up.
"""

from __future__ import annotations

import dataclasses
import random
from dataclasses import dataclass
from typing import Any, Literal

Outcome = Literal["504", "reset", "econnector", "reset_after", "504_after"]
FAULT_NAMES: tuple[str, ...] = ("latency", "504", "reset", "econnector", "reset_after", "504_after")
#: Faults that run the request and then drop or replace its answer.
AFTER_EXECUTION: frozenset[str] = frozenset({"reset_after", "504_after"})
_RATES: tuple[tuple[str, Outcome], ...] = (
    ("rate_reset", "reset"),
    ("rate_504", "504"),
    ("rate_econnector", "econnector"),
    ("rate_reset_after", "reset_after"),
    ("rate_504_after", "504_after"),
)


@dataclass
class Faults:
    """Fault settings of one listener (rates are probabilities per request, 0..1)."""

    latency: float = 0.0  #: fixed delay in seconds before the request is handled
    jitter: float = 0.0  #: extra uniform delay in [0, jitter) seconds
    rate_504: float = 0.0  #: answer 504 Gateway Timeout
    rate_reset: float = 0.0  #: close the connection with a TCP reset and no response
    rate_econnector: float = 0.0  #: answer 400 "eConnector not running"
    rate_reset_after: float = (
        0.0  #: execute the request (commit), then reset the connection: the answer is lost
    )
    rate_504_after: float = 0.0  #: execute the request (commit), then answer 504 as if it had timed out

    def validate(self) -> None:
        for name in FAULT_FIELDS:
            if getattr(self, name) < 0:
                raise ValueError(f"fault setting {name} must not be negative")
        if sum(getattr(self, rate) for rate, _ in _RATES) > 1.0:
            raise ValueError("fault rates add up to more than 1")

    def as_dict(self) -> dict[str, float]:
        return dataclasses.asdict(self)


FAULT_FIELDS = frozenset(f.name for f in dataclasses.fields(Faults))


class FaultInjector:
    """Draws the delay and the fault (if any) for each request of one listener."""

    def __init__(self, faults: Faults | None = None, *, seed: int = 0) -> None:
        self.faults = faults or Faults()
        self.faults.validate()
        self._rng = random.Random(seed)

    def update(self, **changes: Any) -> Faults:
        """Change some settings live; unknown names raise ``ValueError``."""
        unknown = set(changes) - FAULT_FIELDS
        if unknown:
            raise ValueError(f"unknown fault setting(s): {', '.join(sorted(unknown))}")
        new = dataclasses.replace(self.faults, **{k: float(v) for k, v in changes.items()})
        new.validate()
        self.faults = new
        return new

    @property
    def active(self) -> bool:
        return any(getattr(self.faults, name) for name in FAULT_FIELDS)

    def draw(self) -> tuple[float, Outcome | None]:
        f = self.faults
        delay = f.latency + (self._rng.uniform(0.0, f.jitter) if f.jitter else 0.0)
        rates = [(getattr(f, rate), outcome) for rate, outcome in _RATES]
        if not any(rate for rate, _ in rates):
            return delay, None
        r = self._rng.random()  # one draw per request: the rates are exclusive
        edge = 0.0
        for rate, outcome in rates:
            edge += rate
            if r < edge:
                return delay, outcome
        return delay, None
