"""Streaming pagination over the API's Offset/Limit pages: every row once, in order, without waste.

The API gives no total and no next link, and a server may hand back fewer rows than the Limit asked (Remote caps
pages at 100, Local/Service at 1000, Enterprise at 1000/10 000, some lists at 100 whatever the mode).

**Stop rule.** An empty page ends the stream; so does a page shorter than asked, unless its length could be a
server's cap. The documented caps are 100, 1000 and 10 000 and an undocumented one would be a round number, so
a short page whose length is a multiple of 100 is confirmed by one more request, and no other page is.

**Rows that change while the stream runs.** Offsets shift when rows are deleted or inserted before the cursor.
For a model with a primary key, each page is asked from ``offset - k`` (``k = overlap``, 1 by default) so that
it overlaps what was already read. A page that contains none of the rows already read has lost its place (rows
were deleted behind the cursor): the stream steps back, doubling the distance, until a page connects again.
Rows already yielded are never yielded again (deduplicated by primary key). This relies on the server listing
rows in a stable order (the API lists by primary key). Guaranteed: every row that exists for the whole stream
is yielded exactly once. Not guaranteed: a row inserted behind the cursor is not seen by this stream (an
incremental ``DateTStamp`` pass picks it up), and a row deleted during the stream may or may not appear.

**Read-ahead.** On unthrottled modes the next pages are fetched ahead, concurrently and in order, but only while
pages come back full: after a short page no new guess is made. A guess whose offset turns out wrong and the
overshoot past the end are cancelled.
"""

from __future__ import annotations

import asyncio
import collections
import operator
from collections.abc import AsyncIterator, Awaitable, Callable, Generator, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from ._exceptions import PaginationError

T = TypeVar("T")

#: Every page size a server is known to cap at (for reference; the stop rule uses :data:`CAP_STEP`).
KNOWN_CAPS = (100, 1000, 10_000)
#: A short page whose length is a multiple of this could be a server's cap, so it does not end a stream.
CAP_STEP = 100
#: Times a stream may lose its place and step back before it gives up (the list changes faster than it is read).
MAX_RESYNCS = 32

FetchPage = Callable[[int, int], Awaitable[list[T]]]


def is_last_page(rows: int, asked: int) -> bool:
    """The stop rule: an empty page, or one short of the Limit asked whose length could not be a cap."""
    return rows == 0 or (rows < asked and rows % CAP_STEP != 0)


@dataclass
class _Ahead:
    start: int
    asked: int
    task: asyncio.Future[Any]


class Paginator(Generic[T]):
    """The rows of a list call: an async iterator, also offering ``pages()``, ``first_page()``, ``collect()``.

    Nothing is fetched until it is iterated or awaited; ``await paginator`` is ``await paginator.collect()``.
    ``primary_key`` (a field name) turns on the overlap and the deduplication described in the module.
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
    ) -> None:
        self._fetch = fetch
        self._limit_for_page = limit_for_page
        self._prefetch_depth = prefetch_depth
        self._offset = offset
        self._limit = limit
        self._primary_key = primary_key
        self._overlap = max(overlap, 0) if primary_key else 0
        self._operation = operation

    def _asked(self) -> int:
        return self._limit if self._limit is not None else self._limit_for_page()

    async def first_page(self) -> list[T]:
        """Fetch only the first page."""
        return await self._fetch(self._offset, self._asked())

    async def pages(self) -> AsyncIterator[list[T]]:
        """Yield the new rows of every page in order (prefetching ahead where the mode is not throttled)."""
        stream = _Stream(self)
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

    async def collect(self) -> list[T]:
        """Fetch every page and return all rows in one list."""
        rows: list[T] = []
        pages = self.pages()
        try:
            async for page in pages:
                rows.extend(page)
        finally:
            await pages.aclose()  # type: ignore[attr-defined]
        return rows

    def __await__(self) -> Generator[Any, None, list[T]]:
        return self.collect().__await__()


class _Stream(Generic[T]):
    """One pass over a list: the position, the keys seen, and the pages fetched ahead."""

    def __init__(self, pager: Paginator[T]) -> None:
        self.pager = pager
        self.offset = pager._offset  # rows before this position have been read
        self.seen: set[Any] = set()
        self.key: Callable[[Any], Any] | None = None
        self.previous: list[Any] | None = None  # the last page as fetched, to spot a server ignoring Offset
        self.ahead: collections.deque[_Ahead] = collections.deque()
        self.dropped: list[asyncio.Future[Any]] = []  # cancelled guesses, still unwinding
        self.full_sizes: set[int] = (
            set()
        )  # page lengths that mean "full": the Limit asked, or a confirmed cap
        self.step = 0  # rows between the starts of two full pages: the read-ahead's stride (0: no guessing)
        self.resyncs = 0

    # ------------------------------------------------------------------------------------------ the loop

    async def run(self) -> AsyncIterator[list[T]]:
        while True:
            overlap = self._overlap(self.pager._asked())
            start = self.offset - overlap
            entry = await self._next(start)
            rows = await entry.task
            self._check_not_repeated(rows, entry)
            if overlap and not self._connects(rows):
                # Rows were deleted behind the cursor: this page may have skipped some. Find our place again.
                self._drop_guesses()
                start, rows = await self._resync(start, entry.asked)
            new = self._remember(rows)
            if new:
                yield new
            self.offset = start + len(rows)
            if self._ends(len(rows), entry.asked):
                return

    def _overlap(self, asked: int) -> int:
        return min(self.pager._overlap, asked - 1, self.offset) if self.seen else 0

    async def _next(self, start: int) -> _Ahead:
        """The entry for the page at ``start``: the guess made for it, or a new fetch; then more guesses."""
        if self.ahead and self.ahead[0].start != start:
            self._drop_guesses()  # the page size changed, or the last page was short: the guesses are wrong
        if not self.ahead:
            self.ahead.append(self._launch(start, self.pager._asked()))
        depth = self.pager._prefetch_depth()
        while self.step and len(self.ahead) < depth:
            self.ahead.append(self._launch(self.ahead[-1].start + self.step, self.pager._asked()))
        return self.ahead.popleft()

    def _launch(self, start: int, asked: int) -> _Ahead:
        return _Ahead(start, asked, asyncio.ensure_future(self.pager._fetch(start, asked)))

    def _ends(self, rows: int, asked: int) -> bool:
        """Apply the stop rule, and decide whether the next pages may be guessed."""
        if rows == asked or rows in self.full_sizes:
            self.full_sizes.add(rows)
            self.step = rows - self._overlap(self.pager._asked())
            return False
        self.step = 0  # short: no guessing past what may be the end
        if is_last_page(rows, asked):
            return True
        self.full_sizes.add(rows)  # a multiple of 100: perhaps the server's cap; one request will tell
        return False

    # --------------------------------------------------------------------------------- exactness checks

    def _keys(self, rows: Sequence[Any]) -> list[Any]:
        if self.key is None:
            name = self.pager._primary_key
            assert name is not None
            self.key = operator.itemgetter(name) if isinstance(rows[0], dict) else operator.attrgetter(name)
        return [self.key(row) for row in rows]

    def _remember(self, rows: list[T]) -> list[T]:
        """Record a page's rows; return those not yielded before."""
        if not self.pager._primary_key or not rows:
            return rows
        new = []
        seen = self.seen
        for row, key in zip(rows, self._keys(rows), strict=True):
            if key not in seen:
                seen.add(key)
                new.append(row)
        return new

    def _connects(self, rows: list[T]) -> bool:
        """Whether a page holds a row already read: then it continues the rows read so far without a gap."""
        return bool(rows) and not self.seen.isdisjoint(self._keys(rows))

    def _check_not_repeated(self, rows: list[T], entry: _Ahead) -> None:
        previous, self.previous = self.previous, rows
        if not rows or previous is None or len(rows) != len(previous):
            return
        if self.pager._primary_key:
            same = self._keys(rows) == self._keys(previous)
        else:
            # Without a key, a page of identical rows (a query's constant column) proves nothing.
            same = rows == previous and any(row != rows[0] for row in rows)
        if same:
            raise PaginationError(
                f"{self.pager._operation or 'list'}: the page at Offset={entry.start} is the same as the page "
                "before it; the server seems to ignore Offset, and the stream would repeat rows forever",
                operation=self.pager._operation,
                offset=entry.start,
                limit=entry.asked,
            )

    async def _resync(self, start: int, asked: int) -> tuple[int, list[T]]:
        """Step back from ``start``, doubling the distance, until a page holds a row already read."""
        self.resyncs += 1
        if self.resyncs > MAX_RESYNCS:
            raise PaginationError(
                f"{self.pager._operation or 'list'}: lost its place {MAX_RESYNCS} times; the list changes "
                "faster than it can be read",
                operation=self.pager._operation,
                offset=start,
                limit=asked,
            )
        back = max(asked - self._overlap(asked), 1)
        while True:
            probe = max(start - back, 0)
            rows = await self.pager._fetch(probe, asked)
            self.previous = rows
            if probe == 0 or self._connects(rows):
                return probe, rows
            back *= 2

    # --------------------------------------------------------------------------------------- cleanup

    def _drop_guesses(self) -> None:
        self.dropped = [t for t in self.dropped if not t.done()] + _cancel(self.ahead)

    async def close(self) -> None:
        pending = _cancel(self.ahead) + [t for t in self.dropped if not t.done()]
        if pending:  # wait for the cancelled fetches so none outlives the stream
            await asyncio.gather(*pending, return_exceptions=True)


def _cancel(ahead: collections.deque[_Ahead]) -> list[asyncio.Future[Any]]:
    tasks = []
    while ahead:
        task = ahead.popleft().task
        task.cancel()
        # Retrieve a finished task's exception so asyncio does not log "never retrieved".
        task.add_done_callback(lambda t: t.cancelled() or t.exception())
        tasks.append(task)
    return tasks
