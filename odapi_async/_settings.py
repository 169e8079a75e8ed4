"""The words the throttle and the session share: modes, tiers, priorities, a key's settings and its counters.

A key's settings belong to the process (see ``docs/architecture.md``, "Per-key state"): every session of one
customer key in one mode reads and writes the same :class:`KeySettings`; the last session to say otherwise
wins, and the change is logged at INFO.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal, get_args

__all__ = [
    "DEFAULT_IN_FLIGHT",
    "MODES",
    "TIER_INTERVALS",
    "KeySettings",
    "Mode",
    "Priority",
    "ThrottleStats",
    "Tier",
]

Mode = Literal["local", "service", "remote"]
Tier = Literal["read_all", "full", "enterprise", "auto"]
Priority = Literal["interactive", "bulk"]

MODES: tuple[Mode, ...] = get_args(Mode)
TIERS: tuple[Tier, ...] = get_args(Tier)
PRIORITIES: tuple[Priority, ...] = get_args(Priority)

#: The docs' interval per Remote tier, in seconds (the interval counts the request's own execution).
TIER_INTERVALS: dict[str, float] = {"read_all": 5.0, "full": 1.0, "enterprise": 0.5}
#: Requests of one key in flight at once, per mode: Remote runs one at a time; the office server is protected.
DEFAULT_IN_FLIGHT: dict[str, int] = {"remote": 1, "local": 8, "service": 8}


@dataclass(frozen=True)
class KeySettings:
    """What a session tells the throttle about one key in one mode."""

    tier: Tier = "auto"
    intervals: Mapping[str, float] = field(default_factory=lambda: dict(TIER_INTERVALS))
    max_in_flight: int = 1
    safety_margin: float | None = None

    @classmethod
    def build(
        cls,
        mode: Mode,
        *,
        tier: Tier = "auto",
        intervals: Mapping[str, float] | None = None,
        max_in_flight: int | Mapping[str, int] | None = None,
        safety_margin: float | None = None,
    ) -> KeySettings:
        """Checked settings for ``mode``; ``max_in_flight`` as a number applies to Local and Service only."""
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}")
        if tier not in TIERS:
            raise ValueError(f"unknown tier {tier!r}")
        merged = {**TIER_INTERVALS, **(intervals or {})}
        if any(not isinstance(v, (int, float)) or not v > 0 for v in merged.values()):
            raise ValueError("tier intervals must be positive numbers")
        cap = in_flight_for(mode, max_in_flight)
        if safety_margin is not None and not safety_margin >= 0:
            raise ValueError("safety_margin must not be negative")
        return cls(tier=tier, intervals=merged, max_in_flight=cap, safety_margin=safety_margin)

    def interval(self, mode: Mode, learned_read_all: bool = False) -> float:
        """Seconds between starts in ``mode`` (0 when the mode is not spaced)."""
        if mode != "remote":
            return 0.0
        if self.tier == "auto":
            return self.intervals["read_all" if learned_read_all else "full"]
        return self.intervals[self.tier]


def in_flight_for(mode: Mode, max_in_flight: int | Mapping[str, int] | None) -> int:
    """The in-flight cap of ``mode``: a plain number raises Local/Service only, never Remote (the docs' rule)."""
    given = list(max_in_flight.values()) if isinstance(max_in_flight, Mapping) else [max_in_flight]
    if any(v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1) for v in given):
        raise ValueError(f"max_in_flight must be a whole number of at least 1; got {max_in_flight!r}")
    if max_in_flight is None:
        cap = DEFAULT_IN_FLIGHT[mode]
    elif isinstance(max_in_flight, Mapping):
        cap = max_in_flight.get(mode, DEFAULT_IN_FLIGHT[mode])
    else:
        cap = DEFAULT_IN_FLIGHT[mode] if mode == "remote" else max_in_flight
    return cap


@dataclass
class ThrottleStats:
    """Counters of one key in one mode (a snapshot copy)."""

    requests: int = 0
    """Slots granted (each HTTP attempt, retries included)."""
    waits: int = 0
    """Grants that had to queue first."""
    wait_time: float = 0.0
    """Seconds spent queued, summed over all waits."""
    throttle_answers: int = 0
    """Throttle answers (429 or throttle-text 400/503) reported by the session."""
    in_flight: int = 0
    queued: int = 0
    interval: float = 0.0
    tier: str = "auto"
    margin: float = 0.0
    """The safety margin the next start would use (0 for local/service)."""
    max_start_lag: float = 0.0
    """Worst delay between the moment a queued request was allowed to start and its start."""
