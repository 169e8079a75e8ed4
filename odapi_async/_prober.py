"""Which mode a key's requests go to: the cascade order, failover down it, (later) probing and failback.

``docs/architecture.md``, "Modes and the prober".
"""

from __future__ import annotations

import logging

from ._settings import Mode

logger = logging.getLogger("odapi_async")

__all__ = ["ModeRouter"]


class ModeRouter:
    """The mode in use for one session's key, moved down the cascade when a mode fails."""

    def __init__(self, modes: tuple[Mode, ...], key_id: str) -> None:
        self.modes = modes
        self._key_id = key_id
        self._current = 0

    @property
    def mode(self) -> Mode:
        return self.modes[self._current]

    def next_after(self, mode: Mode) -> Mode | None:
        """The mode after ``mode`` in the cascade, if any."""
        i = self.modes.index(mode)
        return self.modes[i + 1] if i + 1 < len(self.modes) else None

    def fail_over(self, mode: Mode, why: str) -> Mode | None:
        """``mode`` failed: move to the next one (once, however many requests saw it fail)."""
        nxt = self.next_after(mode)
        if nxt is None:
            return None
        if self.mode == mode:
            self._current = self.modes.index(nxt)
            logger.warning("key %s: %s mode failed (%s); now using %s", self._key_id, mode, why, nxt)
        return self.mode if self.modes.index(self.mode) > self.modes.index(mode) else nxt
