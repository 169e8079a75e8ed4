"""Request statistics per listener and per customer key.

Keys never appear in stats: each key is named by :func:`key_id`, a short SHA-256 prefix that a test (or an
operator who knows the key) can compute, but that reveals nothing usable.
"""

from __future__ import annotations

import functools
import hashlib
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from odapi_async.emulator._server.faults import FAULT_NAMES

DEFAULT_HISTORY = 10_000


@functools.lru_cache(maxsize=65536)
def key_id(customer_key: str) -> str:
    """Short stable id of a customer key for stats and logs (first 10 hex digits of its SHA-256)."""
    return hashlib.sha256(customer_key.encode("utf-8")).hexdigest()[:10]


@dataclass
class Counters:
    requests: int = 0
    violations: int = 0
    unauthorized: int = 0
    faults: dict[str, int] = field(default_factory=lambda: dict.fromkeys(FAULT_NAMES, 0))
    statuses: dict[int, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "violations": self.violations,
            "unauthorized": self.unauthorized,
            "faults": dict(self.faults),
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
        }


@dataclass
class KeyListenerStats:
    counters: Counters
    arrivals: deque[float]  # every request of this key on this listener (time.monotonic())
    accepted: deque[float]  # requests that passed the throttle

    def as_dict(self) -> dict[str, Any]:
        out = self.counters.as_dict()
        out["arrivals"] = list(self.arrivals)
        out["accepted_arrivals"] = list(self.accepted)
        return out


class Stats:
    """Counters for every listener and every (key, listener) pair seen so far."""

    def __init__(self, listeners: tuple[str, ...], history: int = DEFAULT_HISTORY) -> None:
        self.history = history
        self.listeners: dict[str, Counters] = {name: Counters() for name in listeners}
        self.keys: dict[str, dict[str, KeyListenerStats]] = {}
        self.tiers: dict[str, str] = {}

    def for_key(self, kid: str, listener: str, tier: str) -> KeyListenerStats:
        per = self.keys.get(kid)
        if per is None:
            per = self.keys[kid] = {}
            self.tiers[kid] = tier
        st = per.get(listener)
        if st is None:
            st = per[listener] = KeyListenerStats(
                Counters(), deque(maxlen=self.history), deque(maxlen=self.history)
            )
        return st

    def reset(self) -> None:
        # In place: each listener's app holds its Counters object.
        for counters in self.listeners.values():
            vars(counters).update(vars(Counters()))
        self.keys.clear()
        self.tiers.clear()

    def snapshot(self) -> dict[str, Any]:
        """Plain-data copy (JSON-ready): ``{"listeners": {...}, "keys": {key_id: {...}}}``."""
        return {
            "listeners": {name: c.as_dict() for name, c in self.listeners.items()},
            "keys": {
                kid: {
                    "tier": self.tiers.get(kid, ""),
                    "listeners": {name: st.as_dict() for name, st in per.items()},
                }
                for kid, per in self.keys.items()
            },
        }
