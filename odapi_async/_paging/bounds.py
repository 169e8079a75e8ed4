"""Bounded collection, ``first()``, and the repr of a list call: the notebook side of :class:`Paginator`.

A list on Remote pages 100 rows at a time, one request per interval: a big table takes hours. So collection
takes a bound (``collect(max_rows=...)``, ``take(n)``), shows its progress where someone is watching
(``_paging.progress``), and a paginator tells what it lists when printed.

Reprs are logged and land in tracebacks, and filter values can be patient data (``LName``, ``Birthdate``,
``Email``): a paginator's repr shows the *names* of its filters, never their values.
"""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from odapi_async._paging.paginator import Paginator
from odapi_async._paging.progress import CollectProgress, progress_wanted

__all__ = [
    "BoundedPaginator",
    "ListInfo",
    "bounded",
    "check_max_rows",
    "collect_rows",
    "describe",
    "paginator_repr",
]

T = TypeVar("T")


@dataclass
class ListInfo:
    """What a paginator lists (for its repr and progress line), and the rows fetched so far."""

    operation: str  # "appointments.list"
    filters: tuple[str, ...]  # names only: values may be patient data
    mode: Callable[[], str | None]
    model: Any = None  # the rows' model class (typed DataFrame columns even for an empty list)
    rows_fetched: int = 0
    pages_fetched: int = 0


def describe(
    paginator: Paginator[T], operation: str, model: Any, filters: Mapping[str, Any], session: object
) -> Paginator[T]:
    """Attach a :class:`ListInfo` to ``paginator`` and count the rows its fetches bring in."""
    info = ListInfo(
        operation=operation,
        filters=tuple(name for name, value in filters.items() if value is not None),
        mode=lambda: getattr(session, "mode", None),
        model=model,
    )
    fetch = paginator._fetch

    async def counted(offset: int, limit: int) -> list[T]:
        rows = await fetch(offset, limit)
        info.rows_fetched += len(rows)
        info.pages_fetched += 1
        return rows

    paginator._fetch = counted
    paginator._info = info
    return paginator


def check_max_rows(max_rows: object) -> int | None:
    if max_rows is None:
        return None
    if isinstance(max_rows, bool) or not isinstance(max_rows, int) or max_rows < 1:
        raise ValueError(f"max_rows must be a whole number of at least 1 (or None for all); got {max_rows!r}")
    return max_rows


class BoundedPaginator(Paginator[T]):
    """The first ``max_rows`` rows of a list: iteration, ``pages()`` and collection stop there."""

    async def pages(self) -> AsyncIterator[list[T]]:
        left = self._max_rows
        assert left is not None
        inner = super().pages()
        try:
            async for page in inner:
                if len(page) >= left:
                    yield page[:left]
                    return
                left -= len(page)
                yield page
        finally:
            await inner.aclose()  # type: ignore[attr-defined]  # cancels read-ahead past the bound


def bounded(paginator: Paginator[T], max_rows: int) -> Paginator[T]:
    """A paginator over the first ``max_rows`` rows of ``paginator``'s list."""
    check_max_rows(max_rows)
    if paginator._max_rows is not None:
        max_rows = min(max_rows, paginator._max_rows)
    page_size = paginator._limit_for_page

    def capped() -> int:
        # No page larger than the bound: "the first 5" asks for 5 rows, not the mode's 1000. A bound beyond the
        # cap keeps the cap's pages (and the stop rule still reads a short page as the end).
        return min(page_size(), max_rows)

    depth = paginator._prefetch_depth

    def enough_pages() -> int:
        # Read ahead no further than the pages the bound needs.
        return max(1, min(depth(), -(-max_rows // out._asked())))

    # A copy, not a new Paginator(...): whatever else the paginator carries (its fetch, stop rule state,
    # options added later) comes along; only the page size, read-ahead and bound change.
    out: Paginator[T] = copy.copy(paginator)
    out.__class__ = BoundedPaginator
    out._limit_for_page = capped
    out._prefetch_depth = enough_pages
    if paginator._limit is not None:
        out._limit = min(paginator._limit, max_rows)
    out._max_rows = max_rows
    return out


async def collect_rows(paginator: Paginator[T], *, max_rows: int | None, progress: bool | None) -> list[T]:
    """Every row (or the first ``max_rows``) in one list, with a progress display where wanted."""
    max_rows = check_max_rows(max_rows)
    source = bounded(paginator, max_rows) if max_rows is not None else paginator
    info = source._info
    what = info.operation if info is not None else "rows"
    rows: list[T] = []
    pages = source.pages()
    with CollectProgress(what, enabled=progress_wanted(progress), total=source._max_rows) as shown:
        try:
            async for page in pages:
                rows.extend(page)
                shown.page(len(page))
        finally:
            await pages.aclose()  # type: ignore[attr-defined]
    return rows


def paginator_repr(paginator: Paginator[Any]) -> str:
    info = paginator._info
    parts = [info.operation if info is not None else "rows"]
    if info is not None:
        parts.append(f"filters=[{', '.join(info.filters)}]")
        mode = info.mode()
        if mode:
            parts.append(f"mode={mode}")
    if paginator._offset:
        parts.append(f"offset={paginator._offset}")
    if paginator._limit is not None:
        parts.append(f"page_size={paginator._limit}")
    if paginator._max_rows is not None:
        parts.append(f"max_rows={paginator._max_rows}")
    if info is not None:
        parts.append(f"rows_fetched={info.rows_fetched}")
    return f"<Paginator {' '.join(parts)}>"
