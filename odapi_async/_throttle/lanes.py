"""The queue of one key: two FIFO lanes, ``interactive`` before ``bulk``, with ageing so bulk is never starved.

A web backend's request (``priority="interactive"``) goes before queued bulk paging of the same key, but a bulk
waiter at the head of its lane lets at most :data:`MAX_OVERTAKES` interactive requests start before it: a
dashboard polling a 5 s key cannot stop a sync. Removal of a cancelled waiter is O(1) (lanes are ordered dicts
keyed by the waiter's sequence number).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Generic, Protocol, TypeVar

#: Interactive starts a waiting bulk head lets pass before it goes itself.
MAX_OVERTAKES = 4


class _Queued(Protocol):
    seq: int
    interactive: bool


W = TypeVar("W", bound=_Queued)


class Lanes(Generic[W]):
    """Waiters of one key in start order (see the module docstring)."""

    __slots__ = ("_bulk", "_interactive", "_overtakes")

    def __init__(self) -> None:
        self._interactive: OrderedDict[int, W] = OrderedDict()
        self._bulk: OrderedDict[int, W] = OrderedDict()
        self._overtakes = 0  # interactive starts since the bulk head began to wait

    def __len__(self) -> int:
        return len(self._interactive) + len(self._bulk)

    def __bool__(self) -> bool:
        return bool(self._interactive or self._bulk)

    def push(self, waiter: W, *, front: bool = False) -> None:
        """Queue ``waiter`` at the back of its lane, or at the front (a refused request sent again)."""
        lane = self._interactive if waiter.interactive else self._bulk
        lane[waiter.seq] = waiter
        if front:
            lane.move_to_end(waiter.seq, last=False)

    def remove(self, waiter: W) -> None:
        (self._interactive if waiter.interactive else self._bulk).pop(waiter.seq, None)
        if not self._bulk:
            self._overtakes = 0

    def _next_lane(self) -> OrderedDict[int, W]:
        if self._bulk and (not self._interactive or self._overtakes >= MAX_OVERTAKES):
            return self._bulk
        return self._interactive

    def peek(self) -> W:
        """The waiter that starts next (the lanes must not be empty)."""
        return next(iter(self._next_lane().values()))

    def pop(self) -> W:
        """Take the waiter :meth:`peek` names."""
        lane = self._next_lane()
        _, waiter = lane.popitem(last=False)
        if lane is self._bulk or not self._bulk:
            self._overtakes = 0
        else:
            self._overtakes += 1
        return waiter
