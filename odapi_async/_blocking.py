"""A blocking client for code that is not async: scripts, Django views, Celery tasks.

Every blocking session of the process runs on ONE background event loop in one daemon thread (an anyio
blocking portal, started on first use and stopped at interpreter exit). So all of them share the process-wide
throttle state and that loop's connection pools exactly as async sessions do, and any number of threads may
call at once: each call is handed to the loop and the calling thread waits for its result. Requests of
several threads run concurrently on the loop; the throttle spaces them.

Types: at run time a resource is the async one with its methods made blocking here; for type checkers the
session declares each resource with a generated Protocol (``resources/_generated/_blocking_types.py``): the
same parameters, the awaited result, ``BlockingPaginator[Model]`` for a list call.

Limits (docs/web.md, "A blocking client"): a call cannot be cancelled from the waiting thread except by its own
``timeout=``; do not call it from inside a running event loop (use the async session there).
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import inspect
import threading
from collections.abc import Callable, Iterator
from types import TracebackType
from typing import Any, Generic, TypeVar

from anyio.from_thread import BlockingPortal, start_blocking_portal

from ._exceptions import SessionClosed
from ._paginate import Paginator
from ._raw import RawRequests
from ._session import OpenDental as AsyncOpenDental
from ._throttle import _running_loop
from .resources._generated._blocking_types import BlockingResources

__all__ = ["BlockingPaginator", "OpenDental", "shutdown"]

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


def _call(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    if _running_loop() is not None:
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
                page = _call(_next_page, pages)
                if page is _END:
                    return
                yield page
        finally:
            _call(pages.aclose)  # type: ignore[attr-defined]  # cancels read-ahead still in flight

    def __iter__(self) -> Iterator[T]:
        for page in self.pages():
            yield from page

    def collect(self, *, max_rows: int | None = None, progress: bool | None = None) -> list[T]:
        return _call(self._paginator.collect, max_rows=max_rows, progress=progress)  # type: ignore[no-any-return]

    def first(self) -> T | None:
        return _call(self._paginator.first)  # type: ignore[no-any-return]

    def first_page(self) -> list[T]:
        return _call(self._paginator.first_page)  # type: ignore[no-any-return]

    def take(self, max_rows: int) -> BlockingPaginator[T]:
        return BlockingPaginator(self._paginator.take(max_rows))

    def to_polars(self, *, max_rows: int | None = None, progress: bool | None = None) -> Any:
        return _call(self._paginator.to_polars, max_rows=max_rows, progress=progress)

    def to_pandas(self, *, max_rows: int | None = None, progress: bool | None = None) -> Any:
        return _call(self._paginator.to_pandas, max_rows=max_rows, progress=progress)

    def __repr__(self) -> str:
        return repr(self._paginator).replace("<Paginator", "<BlockingPaginator", 1)


def _blocking_method(method: Callable[..., Any]) -> Callable[..., Any]:
    if inspect.iscoroutinefunction(method):

        @functools.wraps(method)
        def call(*args: Any, **kwargs: Any) -> Any:
            return _call(method, *args, **kwargs)

        return call

    @functools.wraps(method)
    def wrap(*args: Any, **kwargs: Any) -> Any:
        result = method(*args, **kwargs)  # a list call: checks its arguments here, fetches nothing
        return BlockingPaginator(result) if isinstance(result, Paginator) else result

    return wrap


class _BlockingResource:
    def __init__(self, resource: Any) -> None:
        self._resource = resource

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._resource, name)
        if name.startswith("_") or not callable(attr):
            return attr
        return _blocking_method(attr)

    def __repr__(self) -> str:
        return repr(self._resource).replace("resource", "resource (blocking)", 1)


class OpenDental(BlockingResources):  # the base only declares the resources' types; it holds nothing
    """A blocking Open Dental session: the async session's arguments, resources and methods, without ``await``.

    ``with OpenDental(...) as od: rows = od.patients.list(LName="Sm").collect()``; a list call is a plain
    iterator (``for p in od.patients.list(): ...``). Thread-safe: share one per customer key.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._async = AsyncOpenDental(*args, **kwargs)

    @classmethod
    def _wrap(cls, session: AsyncOpenDental) -> OpenDental:
        view = object.__new__(cls)
        view._async = session
        return view

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        attr = getattr(self._async, name)  # resources are created lazily by the async session
        if callable(attr):
            return _blocking_method(attr)
        if hasattr(attr, "_segment") or isinstance(attr, RawRequests):
            return _BlockingResource(attr)  # its coroutine methods become blocking
        return attr

    @property
    def async_session(self) -> AsyncOpenDental:
        """The async session underneath (use it only on the background loop, e.g. through ``run``)."""
        return self._async

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        """:meth:`odapi_async.OpenDental.request`, blocking (``cast_to=``, ``params=``, ``json=``…)."""
        return _call(self._async.request, method, path, **kwargs)

    def with_options(self, **options: Any) -> OpenDental:
        return OpenDental._wrap(self._async.with_options(**options))

    def throttle_stats(self) -> Any:
        return self._async.throttle_stats()

    def close(self) -> None:
        """Release the session's share of the pools (on the background loop); later calls raise."""
        if self._async.closed or _portal is None:
            return
        _call(self._async.aclose)

    def __enter__(self) -> OpenDental:
        if self._async.closed:
            raise SessionClosed("this session was closed; make a new OpenDental(...)")
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return repr(self._async).replace("<OpenDental", "<blocking OpenDental", 1)
