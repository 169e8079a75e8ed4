"""Fault injection per listener: latency, 504s, connection resets and "eConnector not running" answers.

One seeded :class:`random.Random` per listener makes a sequence of requests meet the same faults on every run.
A single draw per request picks at most one fault, so configured rates are exclusive and add up.
"""

from __future__ import annotations

import dataclasses
import random
from dataclasses import dataclass
from typing import Any, Literal

Outcome = Literal["504", "reset", "econnector"]
FAULT_NAMES: tuple[str, ...] = ("latency", "504", "reset", "econnector")


@dataclass
class Faults:
    """Fault settings of one listener (rates are probabilities per request, 0..1)."""

    latency: float = 0.0  #: fixed delay in seconds before the request is handled
    jitter: float = 0.0  #: extra uniform delay in [0, jitter) seconds
    rate_504: float = 0.0  #: answer 504 Gateway Timeout
    rate_reset: float = 0.0  #: close the connection with a TCP reset and no response
    rate_econnector: float = 0.0  #: answer 400 "eConnector not running"

    def validate(self) -> None:
        for name in ("latency", "jitter", "rate_504", "rate_reset", "rate_econnector"):
            if getattr(self, name) < 0:
                raise ValueError(f"fault setting {name} must not be negative")
        if self.rate_504 + self.rate_reset + self.rate_econnector > 1.0:
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
        f = self.faults
        return bool(f.latency or f.jitter or f.rate_504 or f.rate_reset or f.rate_econnector)

    def draw(self) -> tuple[float, Outcome | None]:
        f = self.faults
        delay = f.latency + (self._rng.uniform(0.0, f.jitter) if f.jitter else 0.0)
        outcome: Outcome | None = None
        if f.rate_504 or f.rate_reset or f.rate_econnector:
            r = self._rng.random()
            if r < f.rate_reset:
                outcome = "reset"
            elif r < f.rate_reset + f.rate_504:
                outcome = "504"
            elif r < f.rate_reset + f.rate_504 + f.rate_econnector:
                outcome = "econnector"
        return delay, outcome
