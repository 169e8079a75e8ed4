"""A blocking client for code that is not async: scripts, Django views, Celery tasks.

Every blocking session of the process runs on ONE background event loop in one daemon thread (an anyio
blocking portal, started on first use and stopped at interpreter exit: ``_blocking_loop.py``). So all of them share the process-wide
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

import functools
import inspect
from collections.abc import Callable
from types import TracebackType
from typing import Any

from odapi_async._blocking_loop import BlockingPaginator, call, portal_started, shutdown
from odapi_async._display import StatsTable
from odapi_async._exceptions import SessionClosed
from odapi_async._paging.paginator import Paginator
from odapi_async._raw import RawRequests
from odapi_async._session import OpenDental as AsyncOpenDental
from odapi_async.resources._generated._blocking_types import BlockingResources

__all__ = ["BlockingPaginator", "OpenDental", "shutdown"]


def _blocking_method(method: Callable[..., Any]) -> Callable[..., Any]:
    if inspect.iscoroutinefunction(method):

        @functools.wraps(method)
        def blocking_call(*args: Any, **kwargs: Any) -> Any:
            return call(method, *args, **kwargs)

        return blocking_call

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
        return call(self._async.request, method, path, **kwargs)

    def with_options(self, **options: Any) -> OpenDental:
        return OpenDental._wrap(self._async.with_options(**options))

    def throttle_stats(self) -> StatsTable:
        """This key's throttle counters, by mode (a ``dict`` that draws a table in notebooks)."""
        return self._async.throttle_stats()

    def close(self) -> None:
        """Release the session's share of the pools (on the background loop); later calls raise."""
        if self._async.closed or not portal_started():
            return
        call(self._async.aclose)

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
