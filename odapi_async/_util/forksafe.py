"""Process-wide state after ``fork``: a child (a Celery or multiprocessing worker) starts blank.

A forked child inherits a copy of the parent's per-key throttle state, pools and routers: requests the parent had
in flight would stay "in flight" in the child forever, a lock held by a parent's thread at the fork would never
be released, and the parent's connections are not the child's to use. Objects holding such state register a
reset here; it runs in the child right after the fork.
"""

from __future__ import annotations

import os
import weakref
from collections.abc import Callable
from typing import TypeVar

__all__ = ["reset_after_fork"]

T = TypeVar("T")


def reset_after_fork(owner: T, reset: Callable[[T], None]) -> None:
    """Call ``reset(owner)`` in a forked child, if ``owner`` still exists then (held weakly)."""
    if not hasattr(os, "register_at_fork"):  # not on this platform: no fork to survive
        return
    ref = weakref.ref(owner)

    def after_in_child() -> None:
        found = ref()
        if found is not None:
            reset(found)

    os.register_at_fork(after_in_child=after_in_child)
