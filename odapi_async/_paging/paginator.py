"""The rows of a list call as an async stream: :class:`Paginator` (what ``od.appointments.list(...)`` returns).

A paginator holds one frozen :class:`~odapi_async._paging.spec.ListSpec` and offers the ways to read it:
iteration, ``pages()``, ``first_page()``, ``first()``, ``collect()``, ``take()`` and DataFrames. Nothing is fetched
until it is iterated or awaited. The paging itself (the stop rule, the overlap that keeps rows exact while the
list changes, read-ahead, bounds) is the stream's (``stream.py``); collection shows its progress where someone
is watching (``progress.py``); a DataFrame is built from the rows and the list's model (``frames.py``).
Imports run one way: the paginator uses those modules, and none of them knows the paginator.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Generator
from typing import Any, Generic, TypeVar

from odapi_async._paging.frames import require, rows_to_pandas, rows_to_polars
from odapi_async._paging.progress import CollectProgress, progress_wanted
from odapi_async._paging.spec import FetchPage, ListInfo, ListSpec, check_max_rows
from odapi_async._paging.stream import Stream

__all__ = ["Paginator"]

T = TypeVar("T")


class Paginator(Generic[T]):
    """The rows of a list call: an async iterator, also offering ``pages()``, ``first_page()``, ``collect()``.

    Nothing is fetched until it is iterated or awaited; ``await paginator`` is ``await paginator.collect()``.
    ``fetch(offset, limit)`` gets one page; ``limit_for_page`` and ``prefetch_depth`` give the mode's page cap
    and read-ahead depth, asked per page. ``primary_key`` (a field name) turns on the overlap and the
    deduplication described in ``stream.py``. ``info`` says what is listed (the resources pass it: the repr,
    the progress line and typed DataFrame columns come from it).
    """

    def __init__(
        self,
        fetch: FetchPage[T],
        *,
        limit_for_page: Callable[[], int],
        prefetch_depth: Callable[[], int],
        offset: int = 0,
        limit: int | None = None,
        primary_key: str | None = None,
        overlap: int = 1,
        operation: str = "",
        info: ListInfo | None = None,
    ) -> None:
        self._spec: ListSpec[T] = ListSpec(
            fetch,
            limit_for_page,
            prefetch_depth,
            offset=offset,
            limit=limit,
            primary_key=primary_key,
            overlap=overlap,
            operation=operation,
            info=info,
        )

    @classmethod
    def _from_spec(cls, spec: ListSpec[T]) -> Paginator[T]:
        """A paginator over ``spec`` (``take()``: the same list under a new spec; nothing is copied or edited)."""
        out: Paginator[T] = cls.__new__(cls)
        out._spec = spec
        return out

    async def first_page(self) -> list[T]:
        """Fetch only the first page."""
        spec = self._spec
        return await spec.fetch(spec.offset, spec.asked())

    async def pages(self) -> AsyncIterator[list[T]]:
        """Yield the new rows of every page in order (prefetching ahead where the mode is not throttled)."""
        stream = Stream(self._spec)
        try:
            async for page in stream.run():
                yield page
        finally:
            await stream.close()

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
        max_rows = check_max_rows(max_rows)
        spec = self._spec.bounded(max_rows) if max_rows is not None else self._spec
        what = spec.info.operation if spec.info is not None else "rows"
        rows: list[T] = []
        pages = Paginator._from_spec(spec).pages()
        with CollectProgress(what, enabled=progress_wanted(progress), total=spec.max_rows) as shown:
            try:
                async for page in pages:
                    rows.extend(page)
                    shown.page(len(page))
            finally:
                await pages.aclose()  # type: ignore[attr-defined]
        return rows

    def __await__(self) -> Generator[Any, None, list[T]]:
        return self.collect().__await__()

    # -- notebooks and scripts: bounds, first row, repr, DataFrames (docs/notebooks.md)

    def take(self, max_rows: int) -> Paginator[T]:
        """The same list, stopping after ``max_rows`` rows (iteration, ``pages()``, ``collect()``, frames)."""
        return Paginator._from_spec(self._spec.bounded(max_rows))

    async def first(self) -> T | None:
        """The first row, or ``None`` for an empty list (one request, asking for one row)."""
        rows = await self._spec.fetch(self._spec.offset, 1)
        return rows[0] if rows else None

    def __repr__(self) -> str:
        # Names of the filters, never their values (they can be patient data): see ``spec.py``.
        spec = self._spec
        info = spec.info
        parts = [info.operation if info is not None else "rows"]
        if info is not None:
            parts.append(f"filters=[{', '.join(info.filters)}]")
            mode = info.mode()
            if mode:
                parts.append(f"mode={mode}")
        if spec.offset:
            parts.append(f"offset={spec.offset}")
        if spec.limit is not None:
            page_size = spec.limit if spec.max_rows is None else min(spec.limit, spec.max_rows)
            parts.append(f"page_size={page_size}")
        if spec.max_rows is not None:
            parts.append(f"max_rows={spec.max_rows}")
        if info is not None:
            parts.append(f"rows_fetched={info.rows_fetched}")
        return f"<Paginator {' '.join(parts)}>"

    async def to_polars(self, *, max_rows: int | None = None, progress: bool | None = None) -> Any:
        """Collect into a ``polars.DataFrame`` with typed columns (needs the ``polars`` extra)."""
        require("polars")  # fail before fetching anything
        rows = await self.collect(max_rows=max_rows, progress=progress)
        return rows_to_polars(rows, self._model())

    async def to_pandas(self, *, max_rows: int | None = None, progress: bool | None = None) -> Any:
        """Collect into a ``pandas.DataFrame`` with typed columns (needs the ``pandas`` extra)."""
        require("pandas")
        rows = await self.collect(max_rows=max_rows, progress=progress)
        return rows_to_pandas(rows, self._model())

    def _model(self) -> Any:
        info = self._spec.info
        return info.model if info is not None else None
