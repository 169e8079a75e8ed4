"""The throttle backend seam: what the request path asks of a throttle, and the in-process implementation.

The request path needs three things from a throttle, per (mode, customer key): a **slot** to hold while one
attempt runs (waiting for its turn first, marking when the request left, reporting a throttle answer before it
lets go), the key's **settings** (told by each session; the last one wins), and **stats**. :class:`ProcessThrottle`
keeps the state in this process (one :class:`~odapi_async._throttle.key.KeyThrottle` per mode and key, shared by
every event loop and thread); a Redis-backed throttle implements the same protocol for many processes or hosts,
and nothing above this seam changes. See ``docs/architecture.md``, "Seams".
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol, runtime_checkable

from odapi_async._settings import KeySettings, Mode, Priority, ThrottleStats
from odapi_async._throttle.key import KeyThrottle
from odapi_async._util.forksafe import reset_after_fork

__all__ = ["ProcessThrottle", "Slot", "ThrottleBackend"]


@runtime_checkable
class Slot(Protocol):
    """One attempt's turn on a key, held from the request's start to the end of its answer."""

    @property
    def spaced(self) -> bool:
        """Whether departures are spaced (then :meth:`trace` should reach the HTTP client)."""
        ...

    def mark_sent(self) -> None:
        """The request has left (the first call counts)."""
        ...

    async def trace(self, event: str, info: Mapping[str, Any]) -> None:
        """An httpx ``trace`` extension callback that marks the departure."""
        ...

    def report_throttled(self, retry_after: float | None, *, max_wait: float = ...) -> None:
        """The server refused this request as too soon; called before the slot is released."""
        ...


@runtime_checkable
class ThrottleBackend(Protocol):
    """Where per-key throttle state lives (see the module docstring)."""

    def configure(self, mode: Mode, key_id: str, settings: KeySettings) -> None:
        """A session's settings for this key (the last writer wins)."""
        ...

    def slot(
        self, mode: Mode, key_id: str, priority: Priority = "bulk", *, retry: bool = False
    ) -> AbstractAsyncContextManager[Slot]:
        """Wait for the turn of one attempt, then hold the key's in-flight slot until exit."""
        ...

    def interval(self, mode: Mode, key_id: str) -> float:
        """Seconds between starts now (0 when the mode is not spaced)."""
        ...

    def max_in_flight(self, mode: Mode, key_id: str) -> int:
        """Requests of this key that may run at once in ``mode``."""
        ...

    def stats(self, key_id: str | None = None) -> dict[tuple[str, str], ThrottleStats]:
        """Counters by ``(mode, key_id)``, for one key or all."""
        ...


class ProcessThrottle:
    """The in-process backend: per-key state shared by every event loop and thread of this process."""

    def __init__(self) -> None:
        self._keys: dict[tuple[str, str], KeyThrottle] = {}
        # The same throttles by key id, then mode: one key's stats without walking every key of the process
        # (a live table of N offices asks for one key's stats per row shown; walking all keys was O(N) a row).
        self._by_key: dict[str, dict[str, KeyThrottle]] = {}
        self._lock = threading.Lock()
        reset_after_fork(self, ProcessThrottle.__init__)  # a forked child starts blank (_util/forksafe.py)

    def __repr__(self) -> str:
        return f"<ProcessThrottle keys={len(self._keys)}>"

    def __len__(self) -> int:
        return len(self._keys)

    def key(self, mode: Mode, key_id: str, settings: KeySettings | None = None) -> KeyThrottle:
        """The throttle of ``(mode, key_id)``, created on first use with ``settings`` (or the defaults)."""
        found = self._keys.get((mode, key_id))
        if found is None:
            with self._lock:
                found = self._keys.get((mode, key_id))
                if found is None:
                    found = self._keys[(mode, key_id)] = KeyThrottle(
                        mode, key_id, settings or KeySettings.build(mode)
                    )
                    self._by_key.setdefault(key_id, {})[mode] = found
                    return found
        if settings is not None:
            found.configure(settings)
        return found

    def configure(self, mode: Mode, key_id: str, settings: KeySettings) -> None:
        self.key(mode, key_id, settings)

    def slot(
        self, mode: Mode, key_id: str, priority: Priority = "bulk", *, retry: bool = False
    ) -> AbstractAsyncContextManager[Slot]:
        return self.key(mode, key_id).slot(priority, retry=retry)

    def interval(self, mode: Mode, key_id: str) -> float:
        return self.key(mode, key_id).interval

    def max_in_flight(self, mode: Mode, key_id: str) -> int:
        return self.key(mode, key_id).max_in_flight

    def stats(self, key_id: str | None = None) -> dict[tuple[str, str], ThrottleStats]:
        with self._lock:
            if key_id is None:
                keys = list(self._keys.items())
            else:
                keys = [((mode, key_id), t) for mode, t in self._by_key.get(key_id, {}).items()]
        return {k: t.stats() for k, t in keys}
