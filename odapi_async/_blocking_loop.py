"""The blocking client's background loop, and its paginator (below the session: no module here imports it).

Every blocking session of the process hands its calls to ONE event loop in one daemon thread (an anyio blocking
portal, started on first use and stopped at interpreter exit); :func:`call` is that hand-off.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import threading
from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

from anyio.from_thread import BlockingPortal, start_blocking_portal

from odapi_async._paging.paginator import Paginator
from odapi_async._util.perloop import running_loop

__all__ = ["BlockingPaginator", "call", "portal_started", "shutdown"]

T = TypeVar("T")

_lock = threading.Lock()
_stack: contextlib.ExitStack | None = None
_portal: BlockingPortal | None = None
_END = object()


def _the_portal() -> BlockingPortal:
    """The process's background loop, started on first use."""
    global _stack, _portal
    with _lock:
        if _portal is None:
            stack = contextlib.ExitStack()
            _portal = stack.enter_context(start_blocking_portal(name="odapi-async-blocking"))
            _stack = stack
        return _portal


def shutdown() -> None:
    """Stop the background loop (run at interpreter exit; a later call starts a new one).

    Pools of the loop close as it shuts down; sessions still open must not be used afterwards.
    """
    global _stack, _portal
    with _lock:
        stack, _stack, _portal = _stack, None, None
    if stack is not None:
        stack.close()


atexit.register(shutdown)


def portal_started() -> bool:
    """Whether the background loop runs (a session never used has nothing on it to close)."""
    return _portal is not None


def call(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    if running_loop() is not None:
        raise RuntimeError(
            "odapi_async.blocking called inside a running event loop would block it: use the async "
            "odapi_async.OpenDental there"
        )
    return _the_portal().call(functools.partial(func, *args, **kwargs))


async def _next_page(pages: Any) -> Any:
    try:
        return await pages.__anext__()
    except StopAsyncIteration:
        return _END


class BlockingPaginator(Generic[T]):
    """A list call for blocking code: a plain iterator over rows, with ``pages()``, ``collect()``…"""

    def __init__(self, paginator: Paginator[T]) -> None:
        self._paginator = paginator

    def pages(self) -> Iterator[list[T]]:
        """Yield every page in order (each fetched on the background loop)."""
        pages = self._paginator.pages()
        try:
            while True:
                page = call(_next_page, pages)
                if page is _END:
                    return
                yield page
        finally:
            call(pages.aclose)  # type: ignore[attr-defined]  # cancels read-ahead still in flight

    def __iter__(self) -> Iterator[T]:
        for page in self.pages():
            yield from page

    def collect(self, *, max_rows: int | None = None, progress: bool | None = None) -> list[T]:
        return call(self._paginator.collect, max_rows=max_rows, progress=progress)  # type: ignore[no-any-return]

    def first(self) -> T | None:
        return call(self._paginator.first)  # type: ignore[no-any-return]

    def first_page(self) -> list[T]:
        return call(self._paginator.first_page)  # type: ignore[no-any-return]

    def take(self, max_rows: int) -> BlockingPaginator[T]:
        return BlockingPaginator(self._paginator.take(max_rows))

    def to_polars(self, *, max_rows: int | None = None, progress: bool | None = None) -> Any:
        return call(self._paginator.to_polars, max_rows=max_rows, progress=progress)

    def to_pandas(self, *, max_rows: int | None = None, progress: bool | None = None) -> Any:
        return call(self._paginator.to_pandas, max_rows=max_rows, progress=progress)

    def __repr__(self) -> str:
        return repr(self._paginator).replace("<Paginator", "<BlockingPaginator", 1)
