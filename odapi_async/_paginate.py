"""Streaming pagination over the API's Offset/Limit pages.

The API gives no total and no next link, and a server may hand back fewer rows than the Limit asked
(Remote caps pages at 100, Local/Service at 1000, Enterprise at 1000/10 000, and some lists cap at 100 whatever
the mode). So the stream only ends on an empty page, or on a page shorter than the Limit asked *and* shorter than
every known cap: a page of exactly 100, 1000 or 10 000 rows never ends it. Offsets count rows received, so a
change of page size mid-stream (a failover from Local to Remote) continues at the right row.

On unthrottled modes the next pages are fetched ahead, concurrently and in order; a page whose offset turns out
wrong (the page size changed) and the overshoot past the end are cancelled.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import AsyncIterator, Awaitable, Callable, Generator
from typing import TYPE_CHECKING, Any, Generic, TypeVar

if TYPE_CHECKING:
    from ._rows import ListInfo

T = TypeVar("T")

#: Every page size a server is known to cap at; a page of one of these sizes is never the last.
KNOWN_CAPS = (100, 1000, 10_000)

FetchPage = Callable[[int, int], Awaitable[list[T]]]


def is_last_page(rows: int, asked: int) -> bool:
    """The stop rule: only an empty page, or one short of both the Limit asked and the smallest cap, ends."""
    return rows == 0 or (rows < asked and rows < min(KNOWN_CAPS))


class Paginator(Generic[T]):
    """The rows of a list call: an async iterator, also offering ``pages()``, ``first_page()``, ``collect()``.

    Nothing is fetched until it is iterated or awaited; ``await paginator`` is ``await paginator.collect()``.
    """

    def __init__(
        self,
        fetch: FetchPage[T],
        *,
        limit_for_page: Callable[[], int],
        prefetch_depth: Callable[[], int],
        offset: int = 0,
        limit: int | None = None,
    ) -> None:
        self._fetch = fetch
        self._limit_for_page = limit_for_page
        self._prefetch_depth = prefetch_depth
        self._offset = offset
        self._limit = limit

    def _asked(self) -> int:
        return self._limit if self._limit is not None else self._limit_for_page()

    async def first_page(self) -> list[T]:
        """Fetch only the first page."""
        return await self._fetch(self._offset, self._asked())

    async def pages(self) -> AsyncIterator[list[T]]:
        """Yield every page in order (prefetching ahead where the mode is not throttled)."""
        offset = self._offset
        ahead: collections.deque[tuple[int, int, asyncio.Task[list[T]]]] = collections.deque()
        dropped: list[asyncio.Task[list[T]]] = []  # cancelled wrong guesses, still unwinding
        step = 0
        try:
            while True:
                if ahead and ahead[0][0] != offset:
                    # The page size changed: the guesses past this point are wrong. Their cancellation is
                    # awaited before the stream ends, like the overshoot's.
                    dropped = [t for t in dropped if not t.done()] + _cancel(ahead)
                if not ahead:
                    asked = self._asked()
                    ahead.append((offset, asked, asyncio.ensure_future(self._fetch(offset, asked))))
                depth = self._prefetch_depth()
                while step and len(ahead) < depth:
                    guess = ahead[-1][0] + step
                    asked = self._asked()
                    ahead.append((guess, asked, asyncio.ensure_future(self._fetch(guess, asked))))
                _, asked, task = ahead.popleft()
                page = await task
                yield page
                if is_last_page(len(page), asked):
                    return
                offset += len(page)
                step = len(page)
        finally:
            pending = _cancel(ahead) + [t for t in dropped if not t.done()]
            if pending:  # wait for the cancelled fetches so none outlives the stream
                await asyncio.gather(*pending, return_exceptions=True)

    async def __aiter__(self) -> AsyncIterator[T]:
        pages = self.pages()
        try:
            async for page in pages:
                for row in page:
                    yield row
        finally:
            await pages.aclose()  # type: ignore[attr-defined]

    async def collect(self, *, max_rows: int | None = None, progress: bool | None = None) -> list[T]:
        """Fetch every page (or only the first ``max_rows`` rows) and return the rows in one list.

        ``progress``: a progress display (rich); ``None`` shows it in notebooks and at the prompt only.
        """
        from ._rows import collect_rows

        return await collect_rows(self, max_rows=max_rows, progress=progress)

    def __await__(self) -> Generator[Any, None, list[T]]:
        return self.collect().__await__()

    # -- notebooks and scripts: bounds, first row, repr, DataFrames (``_rows``, ``_frames``, docs/notebooks.md)

    _info: ListInfo | None = None  # what is listed and the rows fetched so far (set by the resource)
    _max_rows: int | None = None  # set on the paginators ``take()`` returns

    def take(self, max_rows: int) -> Paginator[T]:
        """The same list, stopping after ``max_rows`` rows (iteration, ``pages()``, ``collect()``, frames)."""
        from ._rows import bounded

        return bounded(self, max_rows)

    async def first(self) -> T | None:
        """The first row, or ``None`` for an empty list (one request, asking for one row)."""
        rows = await self._fetch(self._offset, 1)
        return rows[0] if rows else None

    def __repr__(self) -> str:
        from ._rows import paginator_repr

        return paginator_repr(self)

    async def to_polars(self, *, max_rows: int | None = None, progress: bool | None = None) -> Any:
        """Collect into a ``polars.DataFrame`` with typed columns (needs the ``polars`` extra)."""
        from ._frames import to_polars

        return await to_polars(self, max_rows=max_rows, progress=progress)

    async def to_pandas(self, *, max_rows: int | None = None, progress: bool | None = None) -> Any:
        """Collect into a ``pandas.DataFrame`` with typed columns (needs the ``pandas`` extra)."""
        from ._frames import to_pandas

        return await to_pandas(self, max_rows=max_rows, progress=progress)


def _cancel(ahead: collections.deque[tuple[int, int, asyncio.Task[Any]]]) -> list[asyncio.Task[Any]]:
    tasks = []
    while ahead:
        _, _, task = ahead.popleft()
        task.cancel()
        # Retrieve a finished task's exception so asyncio does not log "never retrieved".
        task.add_done_callback(lambda t: t.cancelled() or t.exception())
        tasks.append(task)
    return tasks
