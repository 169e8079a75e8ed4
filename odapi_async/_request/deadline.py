"""An attempt's total deadline: ``async with deadline(seconds): ...`` raises :class:`TimeoutError` when it passes.

Entered once per request, so it must be cheap. On Python 3.11+ it is asyncio's own ``asyncio.timeout``: one
timer handle of the loop, cancelled on exit, and ``Task.uncancel`` to tell the deadline's cancellation from the
caller's (about 4 us a request; anyio's ``fail_after``, a cancel scope that looks up the async library and the
current task on entry and exit, cost about 9 us, and ~2 % of the CPU of a 200-office sync). Python 3.10 has no
``Task.uncancel``: a deadline of its own could not tell whether the caller cancelled too at the same moment, so
there anyio's cancel scope, which keeps that book, is used.

``math.inf`` (an ``httpx2.Timeout`` without phases) arms no timer.
"""

from __future__ import annotations

import asyncio
import math
import sys
from contextlib import AbstractAsyncContextManager
from types import TracebackType

import anyio

__all__ = ["AnyioDeadline", "deadline"]


class AnyioDeadline:
    """The deadline as anyio's cancel scope (Python 3.10, where asyncio has no ``Task.uncancel``)."""

    __slots__ = ("_scope",)

    def __init__(self, seconds: float) -> None:
        self._scope = anyio.fail_after(seconds)

    async def __aenter__(self) -> None:
        self._scope.__enter__()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool | None:
        return self._scope.__exit__(exc_type, exc, tb)


if sys.version_info >= (3, 11):

    def deadline(seconds: float) -> AbstractAsyncContextManager[object]:
        """The attempt's deadline, ``seconds`` from now (see the module docstring)."""
        return asyncio.timeout(None if math.isinf(seconds) else seconds)

else:

    def deadline(seconds: float) -> AbstractAsyncContextManager[object]:
        """The attempt's deadline, ``seconds`` from now (see the module docstring)."""
        return AnyioDeadline(seconds)
