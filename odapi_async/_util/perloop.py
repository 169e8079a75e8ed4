"""One value per running event loop (connection pools, Redis clients), closed when that loop shuts down.

Connections belong to the loop that opened them, so they are kept per loop, weakly: nothing here keeps a loop
alive. A small async generator is started in the loop when its value is made; the loop's ``shutdown_asyncgens``
(which ``asyncio.run`` and pytest's loops run before closing) finalises it, and its ``finally`` closes the
value there. So a worker that calls ``asyncio.run`` per job keeps a flat count of sockets.
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Generic, TypeVar

__all__ = ["PerLoop", "running_loop"]

T = TypeVar("T")


def running_loop() -> asyncio.AbstractEventLoop | None:
    """The event loop running in this thread, or ``None`` (no exception: callers ask to choose a path)."""
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


class PerLoop(Generic[T]):
    """The value of each running loop: made by ``make`` on first use, closed by ``close`` with its loop."""

    __slots__ = ("_close", "_last", "_lock", "_loops", "_make")

    def __init__(self, make: Callable[[], T], close: Callable[[T], Awaitable[None]]) -> None:
        self._make = make
        self._close = close
        self._loops: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, tuple[T, AsyncGenerator[None, None]]
        ] = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()  # shared by every thread's loop
        # The last loop asked for and its value: one loop serves most calls (once per request), and this
        # answers them without the lock and the weak dictionary. Weak, like the dictionary; cleared with it.
        self._last: tuple[weakref.ref[asyncio.AbstractEventLoop], T] | None = None

    def here(self) -> T:
        """The running loop's value (made now if it has none)."""
        loop = asyncio.get_running_loop()
        last = self._last  # one read: another thread may replace it meanwhile
        if last is not None and last[0]() is loop:
            return last[1]
        with self._lock:
            found = self._loops.get(loop)
            if found is None:
                value = self._make()
                closer = self._closer(value)
                # Advance it to its ``yield`` now: the loop's asyncgen hooks register it, and the loop's
                # ``shutdown_asyncgens`` then runs its ``finally``.
                try:
                    closer.asend(None).send(None)
                except StopIteration:
                    pass
                found = self._loops[loop] = (value, closer)
            self._last = (weakref.ref(loop, self._forget), found[0])
            return found[0]

    def _forget(self, ref: weakref.ref[asyncio.AbstractEventLoop]) -> None:
        """A loop was collected (without shutting down its generators): its value is not kept for it."""
        last = self._last
        if last is not None and last[0] is ref:
            self._last = None

    def items(self) -> list[tuple[asyncio.AbstractEventLoop, T]]:
        """Every loop's value, now."""
        with self._lock:
            return [(loop, found[0]) for loop, found in self._loops.items()]

    async def close_here(self) -> None:
        """Close the running loop's value now (the next use makes a new one)."""
        with self._lock:
            found = self._loops.pop(asyncio.get_running_loop(), None)
            self._last = None
        if found is not None:
            await found[1].aclose()  # its ``finally`` closes the value

    async def _closer(self, value: T) -> AsyncGenerator[None, None]:
        try:
            yield
        finally:
            try:
                await self._close(value)
            finally:
                # This generator holds its loop (its finaliser is a method of the loop): drop it, or the loop
                # lives on.
                loop = asyncio.get_running_loop()
                with self._lock:
                    found = self._loops.get(loop)
                    if found is not None and found[0] is value:  # not a value made since for this loop
                        del self._loops[loop]
                    last = self._last
                    if last is not None and last[1] is value:
                        self._last = None
