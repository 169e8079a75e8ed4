"""What a list call is, frozen: :class:`ListSpec` (fetch, paging figures, bounds, key) and :class:`ListInfo`.

A paginator reads its list from one immutable spec, and ``take()`` / ``collect(max_rows=...)`` make a new spec
rather than edit the old: a bound is one more field (:meth:`ListSpec.bounded`), and the page size and read-ahead
it implies are computed from the spec where a page is asked (:meth:`ListSpec.asked`, :meth:`ListSpec.read_ahead`).

A list on Remote pages 100 rows at a time, one request per interval: a big table takes hours. So collection
takes a bound, and no page is asked larger than the bound ("the first 5" asks for 5 rows, not the mode's 1000),
nor more pages read ahead than the bound needs.

Reprs are logged and land in tracebacks, and filter values can be patient data (``LName``, ``Birthdate``,
``Email``): :class:`ListInfo` keeps the *names* of a list's filters, never their values.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

__all__ = ["FetchPage", "ListInfo", "ListSpec", "check_max_rows", "list_info"]

T = TypeVar("T")

#: Fetches the page at (offset, limit): the resource's request for one page of its list.
FetchPage = Callable[[int, int], Awaitable[list[T]]]


@dataclass
class ListInfo:
    """What a list is (for its repr, progress line and DataFrame columns), and the rows fetched so far.

    The counters are the one mutable part of a list's description: every paginator made from one list call
    (``take()`` and the like) counts into the same record.
    """

    operation: str  # "appointments.list"
    filters: tuple[str, ...]  # names only: values may be patient data
    mode: Callable[[], str | None]
    model: Any = None  # the rows' model class (typed DataFrame columns even for an empty list)
    rows_fetched: int = 0
    pages_fetched: int = 0


def list_info(
    operation: str, model: Any, filters: Mapping[str, Any], mode: Callable[[], str | None]
) -> ListInfo:
    """The :class:`ListInfo` of a list call: the names of the filters given (a ``None`` filter is not sent)."""
    return ListInfo(
        operation=operation,
        filters=tuple(name for name, value in filters.items() if value is not None),
        mode=mode,
        model=model,
    )


def check_max_rows(max_rows: object) -> int | None:
    if max_rows is None:
        return None
    if isinstance(max_rows, bool) or not isinstance(max_rows, int) or max_rows < 1:
        raise ValueError(f"max_rows must be a whole number of at least 1 (or None for all); got {max_rows!r}")
    return max_rows


@dataclass(frozen=True)
class ListSpec(Generic[T]):
    """One list call as a paginator reads it. ``page_size`` and ``depth`` are asked per page: a stream that
    fails over mid-way goes on with the new mode's cap and read-ahead at the same row."""

    fetch: FetchPage[T]
    page_size: Callable[[], int]  # the mode's page cap
    depth: Callable[[], int]  # the mode's read-ahead depth (1: none)
    offset: int = 0  # the first row
    limit: int | None = None  # the Limit the caller asked (else the mode's page size)
    max_rows: int | None = None  # stop after this many rows (take(), collect(max_rows=))
    primary_key: str | None = None  # turns on the overlap and the deduplication (see ``stream``)
    overlap: int = 1  # rows each page re-reads of the one before (0 without a primary key)
    operation: str = ""  # for errors: "appointments.list"
    info: ListInfo | None = None

    def __post_init__(self) -> None:
        if not self.primary_key and self.overlap:
            object.__setattr__(self, "overlap", 0)  # nothing to connect pages by
        elif self.overlap < 0:
            object.__setattr__(self, "overlap", 0)

    def asked(self) -> int:
        """The Limit of the next page: the caller's, else the mode's, never more than the bound."""
        asked = self.limit if self.limit is not None else self.page_size()
        # A bound beyond the cap keeps the cap's pages (and the stop rule still reads a short page as the end).
        return asked if self.max_rows is None else min(asked, self.max_rows)

    def read_ahead(self) -> int:
        """Pages in flight at most: the mode's depth, and no further than the pages the bound needs."""
        depth = self.depth()
        if self.max_rows is None:
            return depth
        return max(1, min(depth, -(-self.max_rows // self.asked())))

    def bounded(self, max_rows: int) -> ListSpec[T]:
        """The same list, stopping after ``max_rows`` rows (or sooner, if it was bounded tighter already)."""
        check_max_rows(max_rows)
        if self.max_rows is not None:
            max_rows = min(max_rows, self.max_rows)
        return dataclasses.replace(self, max_rows=max_rows)
