"""Which mode a key's requests go to: the cascade, failover down it, and failback up it.

Open Dental recommends the Local API or the API Service when the office network offers them (unthrottled, pages
of 1 000) and the Remote API otherwise. The Local API exists only while the desktop program runs, so a mode may
vanish and come back at any moment: that is normal, not an error. Rules (``docs/modes.md``):

* The cascade is ``modes=`` in order. A mode not yet seen answering is tried with a short connect timeout
  (``probe_timeout``), so the first request of a session is its own probe: it goes to the first mode that takes
  the connection. Remote is never probed (a probe would spend a throttled request): it is the last resort and
  assumed up.
* Failover: a mode whose connection failed is left at once (the request moves on even if it is a write); a mode
  that keeps failing an idempotent request after its retries is left too. One WARNING per change, naming modes.
* Failback: while a lower mode is in use, the higher ones are probed again (``GET /computers?Limit=1``, short
  timeouts) at most once per ``failback_interval``, alongside the key's requests — an idle key probes nothing, and
  no task outlives its probe. The first higher mode that answers is used again.

One router serves every session of a hub with the same key, modes and endpoints, so a mode found down by one
session is down for all of them.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from odapi_async._request.attempt import AttemptRunner, Kind
from odapi_async._request.interface import Prepared
from odapi_async._request.options import RequestOptions
from odapi_async._settings import Mode
from odapi_async._util.forksafe import reset_after_fork

logger = logging.getLogger("odapi_async")

__all__ = ["PROBE_PATH", "ModeReport", "ModeRouter", "probe_mode"]

#: What a probe asks: a tiny answer, no patient data, and a key check (a wrong key answers 401).
PROBE_PATH = "/computers"
PROBE_QUERY = "?Limit=1"


@dataclass(frozen=True)
class ModeReport:
    """What a probe found out about one mode (``await od.probe()``)."""

    mode: Mode
    url: str
    reachable: bool | None  # None: not probed (Remote: a probe would spend a throttled request)
    round_trip: float | None  # seconds, for the probe request
    page_cap: int
    throttled: bool
    in_use: bool
    error: str | None = None


async def probe_mode(
    attempts: AttemptRunner, mode: Mode, url: str, *, page_cap: int, probe_timeout: float
) -> ModeReport:
    """One probe of ``mode`` (``GET /computers?Limit=1``, a short connect), through the key's throttle and
    pool; Remote is reported without a request. A 401 is reported, not raised: the caller decides."""
    if mode == "remote":
        return ModeReport(
            mode, url, None, None, page_cap, True, False, "not probed: it would spend a throttled request"
        )
    started = time.monotonic()
    outcome = await attempts.run(
        mode,
        Prepared("GET", PROBE_PATH, PROBE_QUERY, None, True),
        RequestOptions.for_probe(probe_timeout),
        retry=False,
    )
    took = time.monotonic() - started
    if outcome.kind in (Kind.NOT_SENT, Kind.LOST):
        return ModeReport(mode, url, False, None, page_cap, False, False, outcome.failure)
    error = None if outcome.kind is Kind.ANSWER else f"{outcome.status} {outcome.text}"[:300]
    up = outcome.kind is not Kind.STATUS or (outcome.status < 500 and outcome.status != 401)
    return ModeReport(mode, url, up, took, page_cap, False, False, error)


class ModeRouter:
    """The mode in use for one key, modes and endpoints (see the module docstring)."""

    def __init__(self, modes: tuple[Mode, ...], key_id: str, *, failback_interval: float) -> None:
        self.modes = modes
        self._key_id = key_id
        self._failback_interval = failback_interval
        self._lock = threading.Lock()
        self._current = 0
        self._confirmed: set[Mode] = set()  # seen answering since it was last found down
        self._next_failback = 0.0
        self._failback_running = False

    def __repr__(self) -> str:
        return f"<ModeRouter {'>'.join(self.modes)} in use={self.mode}>"

    @property
    def mode(self) -> Mode:
        return self.modes[self._current]

    def confirmed(self, mode: Mode) -> bool:
        """Whether ``mode`` has answered since it was last found down (else: try it with a short timeout)."""
        return mode in self._confirmed or mode == "remote"

    def answered(self, mode: Mode) -> None:
        self._confirmed.add(mode)

    def next_after(self, mode: Mode) -> Mode | None:
        """The mode after ``mode`` in the cascade, if any."""
        i = self.modes.index(mode)
        return self.modes[i + 1] if i + 1 < len(self.modes) else None

    def fail_over(self, mode: Mode, why: str) -> Mode | None:
        """``mode`` failed: mark it down and move past it (logged once, however many requests saw it fail)."""
        nxt = self.next_after(mode)
        with self._lock:
            self._confirmed.discard(mode)
            if nxt is None:
                return None
            if self._current <= self.modes.index(mode):
                self._current = self.modes.index(nxt)
                self._next_failback = time.monotonic() + self._failback_interval
                logger.warning("key %s: %s mode failed (%s); now using %s", self._key_id, mode, why, nxt)
            # Another request may have moved further down already: follow it, never back up here.
            return self.modes[max(self._current, self.modes.index(nxt))]

    def move_back(self, mode: Mode) -> None:
        """A higher mode answered a probe: use it again."""
        with self._lock:
            i = self.modes.index(mode)
            self._confirmed.add(mode)
            if i < self._current:
                old = self.mode
                self._current = i
                logger.warning(
                    "key %s: %s mode answers again; now using it instead of %s", self._key_id, mode, old
                )

    def maybe_fail_back(self, probe: Callable[[Mode], Awaitable[bool]]) -> None:
        """On a lower mode and due: probe the higher ones in a task of the running loop (one at a time)."""
        if self._current == 0 or time.monotonic() < self._next_failback:
            return
        with self._lock:
            if self._failback_running or time.monotonic() < self._next_failback:
                return
            self._failback_running = True
            self._next_failback = time.monotonic() + self._failback_interval
        higher = self.modes[: self._current]
        task = asyncio.get_running_loop().create_task(self._fail_back(higher, probe))
        _PROBES.add(task)  # a task must be referenced while it runs
        task.add_done_callback(_PROBES.discard)

    async def _fail_back(self, higher: tuple[Mode, ...], probe: Callable[[Mode], Awaitable[bool]]) -> None:
        try:
            for mode in higher:
                if await probe(mode):
                    self.move_back(mode)
                    return
        except Exception as exc:  # a probe must never take a request down with it
            logger.debug("key %s: failback probe failed: %s", self._key_id, type(exc).__name__)
        finally:
            with self._lock:
                self._failback_running = False


_PROBES: set[asyncio.Task[None]] = set()


class RouterRegistry:
    """One router per key, modes and endpoints, shared by the sessions of a hub."""

    def __init__(self) -> None:
        self._routers: dict[tuple[object, ...], ModeRouter] = {}
        self._lock = threading.Lock()
        reset_after_fork(self, RouterRegistry.__init__)

    def get(
        self, key_id: str, modes: tuple[Mode, ...], urls: tuple[str, ...], *, failback_interval: float
    ) -> ModeRouter:
        with self._lock:
            found = self._routers.get((key_id, modes, urls))
            if found is None:
                found = self._routers[(key_id, modes, urls)] = ModeRouter(
                    modes, key_id, failback_interval=failback_interval
                )
            return found
