"""One pass over a list's pages: the stop rule, the overlap and deduplication, read-ahead, the bound.

A :class:`Stream` reads everything from its :class:`~odapi_async._paging.spec.ListSpec` and yields the new rows
of each page; the paginator (``paginator.py``) starts one per iteration.

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
pages come back full: after a short page no new guess is made. The window starts at one guess and doubles with
each full page up to the mode's depth, so a short list is not overshot by the whole window. A guess whose offset
turns out wrong and the overshoot past the end are cancelled.

**Bounds.** A bounded list (``take(n)``, ``collect(max_rows=n)``) stops after its ``n``-th row, in the loop that
produces the pages: the last page is cut there and the read-ahead past it cancelled.
"""

from __future__ import annotations

import asyncio
import bisect
import collections
import itertools
import operator
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from odapi_async._exceptions import PaginationError
from odapi_async._paging.spec import ListSpec

__all__ = ["CAP_STEP", "KNOWN_CAPS", "MAX_RESYNCS", "Stream", "is_last_page"]

T = TypeVar("T")

#: Every page size a server is known to cap at (for reference; the stop rule uses :data:`CAP_STEP`).
KNOWN_CAPS = (100, 1000, 10_000)
#: A short page whose length is a multiple of this could be a server's cap, so it does not end a stream.
CAP_STEP = 100
#: Times a stream may lose its place and step back before it gives up (the list changes faster than it is read).
MAX_RESYNCS = 32


def is_last_page(rows: int, asked: int) -> bool:
    """The stop rule: an empty page, or one short of the Limit asked whose length could not be a cap."""
    return rows == 0 or (rows < asked and rows % CAP_STEP != 0)


@dataclass
class _Ahead:
    start: int
    asked: int
    task: asyncio.Future[Any] | None  # None: not fetched ahead (the stream awaits the fetch itself)


class _SeenKeys:
    """The primary keys a stream has yielded: a number while they ascend (as the API lists rows), else a set.

    While every page's keys strictly ascend and continue the last page's, "already yielded" is simply "at or
    below the last key yielded": no set, constant memory, and the checks run in C. The last :data:`KEEP` keys
    are kept anyway (whole pages, in lists), so that a list found out of order switches to an exact set of
    them and goes on; keys forgotten before that switch could come back only after a resync stepped back that
    far (thousands of deleted rows).
    """

    KEEP = 20_000

    __slots__ = ("_ascends", "_held", "_keys", "_last", "_pages")

    def __init__(self) -> None:
        self._keys: set[Any] | None = None  # the exact set, once the keys were found out of order
        self._pages: collections.deque[list[Any]] = collections.deque()
        self._held = 0
        self._last: Any = None
        # The last page's keys and whether they ascend: a stream asks connects() then new_rows() of one page,
        # and the check walks the whole page (~13 µs for 1000 keys). Pages' key lists are never changed.
        self._ascends: tuple[list[Any], bool] | None = None

    def __bool__(self) -> bool:
        return self._last is not None if self._keys is None else bool(self._keys)

    def __len__(self) -> int:
        return self._held if self._keys is None else len(self._keys)

    def __contains__(self, key: Any) -> bool:
        if self._keys is None:
            return self._last is not None and key <= self._last
        return key in self._keys

    def connects(self, keys: list[Any]) -> bool:
        """Whether a page holds a key already yielded (it then continues the rows read without a gap)."""
        if self._fast(keys):
            return self._last is not None and keys[0] <= self._last
        self._exact()
        assert self._keys is not None
        return not self._keys.isdisjoint(keys)

    def new_rows(self, rows: list[T], keys: list[Any]) -> list[T]:
        """The rows of a page not yielded before (its keys recorded as yielded)."""
        if self._fast(keys):
            last = self._last
            start = 0 if last is None or keys[0] > last else bisect.bisect_right(keys, last)
            if start < len(keys):
                self._hold(keys[start:] if start else keys)
                self._last = keys[-1]
            return rows[start:] if start else rows
        self._exact()
        seen = self._keys
        assert seen is not None
        new = []
        for row, key in zip(rows, keys, strict=True):
            if key not in seen:
                seen.add(key)
                new.append(row)
        return new

    def _fast(self, keys: list[Any]) -> bool:
        # A page wholly below the last key does not continue the list in key order (a resync that stepped back
        # far, or a list in another order): the exact set decides then.
        if self._keys is not None:
            return False
        memo = self._ascends
        if memo is not None and memo[0] is keys:
            ascends = memo[1]
        else:
            ascends = _ascending(keys)
            self._ascends = (keys, ascends)
        return ascends and (self._last is None or keys[-1] >= self._last)

    def _hold(self, keys: list[Any]) -> None:
        self._pages.append(keys)
        self._held += len(keys)
        while self._held - len(self._pages[0]) >= self.KEEP:
            self._held -= len(self._pages.popleft())

    def _exact(self) -> None:
        if self._keys is None:
            self._keys = {key for page in self._pages for key in page}
            self._pages.clear()


def _ascending(keys: list[Any]) -> bool:
    """Strictly ascending keys (checked in C: ``map`` and ``all``)."""
    try:
        return bool(keys) and all(map(operator.lt, keys, itertools.islice(keys, 1, None)))
    except TypeError:  # keys that do not compare
        return False


class Stream(Generic[T]):
    """One pass over a list: the position, the keys seen, and the pages fetched ahead."""

    def __init__(self, spec: ListSpec[T]) -> None:
        self.spec = spec
        self.offset = spec.offset  # rows before this position have been read
        self.left = spec.max_rows  # rows still to yield under a bound (None: all)
        self.seen = _SeenKeys()
        self.key: Callable[[Any], Any] | None = None
        # The last page as fetched (rows, keys), to spot a server that ignores Offset.
        self.previous: tuple[list[Any], list[Any] | None] | None = None
        self.ahead: collections.deque[_Ahead] = collections.deque()
        self.dropped: list[asyncio.Future[Any]] = []  # cancelled guesses, still unwinding
        self.full_sizes: set[int] = (
            set()
        )  # page lengths that mean "full": the Limit asked, or a confirmed cap
        self.step = 0  # rows between the starts of two full pages: the read-ahead's stride (0: no guessing)
        # Pages in flight at most, doubled after each full page up to the mode's depth: a list of two pages
        # then costs one guess past its end, not depth - 1.
        self.window = 1
        self.resyncs = 0

    # ------------------------------------------------------------------------------------------ the loop

    async def run(self) -> AsyncIterator[list[T]]:
        while True:
            overlap = self._overlap(self.spec.asked())
            start = self.offset - overlap
            entry = self._next(start)
            # No guess in flight for this page: awaited in place, with no task of its own (Remote, and the first
            # page anywhere); a guess made earlier is a task already running.
            rows = await (self.spec.fetch(start, entry.asked) if entry.task is None else entry.task)
            keys = self._keys(rows)
            self._check_not_repeated(rows, keys, entry)
            if overlap and not self._connects(keys):
                # Rows were deleted behind the cursor: this page may have skipped some. Find our place again.
                self._drop_guesses()
                start, rows, keys = await self._resync(start, entry.asked)
            new = self._remember(rows, keys)
            if new and self.left is not None:  # the bound, where the pages are produced
                if len(new) >= self.left:
                    yield new[: self.left]
                    return  # the caller's close cancels the read-ahead past the bound
                self.left -= len(new)
            if new:
                yield new
            self.offset = start + len(rows)
            if self._ends(len(rows), entry.asked):
                return

    def _overlap(self, asked: int) -> int:
        return min(self.spec.overlap, asked - 1, self.offset) if self.seen else 0

    def _next(self, start: int) -> _Ahead:
        """The entry for the page at ``start``: the guess made for it, or one to fetch now (``task`` None); and
        the next guesses, launched before the caller awaits this page so that they run meanwhile."""
        if self.ahead and self.ahead[0].start != start:
            self._drop_guesses()  # the page size changed, or the last page was short: the guesses are wrong
        entry = self.ahead.popleft() if self.ahead else _Ahead(start, self.spec.asked(), None)
        if self.step:
            depth = min(self.spec.read_ahead(), self.window) - 1  # in flight besides this page
            last = self.ahead[-1].start if self.ahead else start
            while len(self.ahead) < depth:
                last += self.step
                self.ahead.append(self._launch(last, self.spec.asked()))
        return entry

    def _launch(self, start: int, asked: int) -> _Ahead:
        return _Ahead(start, asked, asyncio.ensure_future(self.spec.fetch(start, asked)))

    def _ends(self, rows: int, asked: int) -> bool:
        """Apply the stop rule, and decide whether the next pages may be guessed."""
        if rows == asked or rows in self.full_sizes:
            self.full_sizes.add(rows)
            self.step = rows - self._overlap(self.spec.asked())
            self.window *= 2
            return False
        self.step = 0  # short: no guessing past what may be the end
        if is_last_page(rows, asked):
            return True
        self.full_sizes.add(rows)  # a multiple of 100: perhaps the server's cap; one request will tell
        return False

    # --------------------------------------------------------------------------------- exactness checks

    def _keys(self, rows: Sequence[Any]) -> list[Any] | None:
        """The primary keys of a page's rows (None for a stream without a key)."""
        name = self.spec.primary_key
        if name is None or not rows:
            return None if name is None else []
        if self.key is None:
            self.key = operator.itemgetter(name) if isinstance(rows[0], dict) else operator.attrgetter(name)
        return list(map(self.key, rows))

    def _remember(self, rows: list[T], keys: list[Any] | None) -> list[T]:
        """Record a page's rows; return those not yielded before."""
        if not keys:
            return rows
        return self.seen.new_rows(rows, keys)

    def _connects(self, keys: list[Any] | None) -> bool:
        """Whether a page holds a row already read: then it continues the rows read so far without a gap."""
        return bool(keys) and self.seen.connects(keys)  # type: ignore[arg-type]

    def _check_not_repeated(self, rows: list[T], keys: list[Any] | None, entry: _Ahead) -> None:
        previous, self.previous = self.previous, (rows, keys)
        if not rows or previous is None or len(rows) != len(previous[0]):
            return
        if keys is not None:
            same = keys == previous[1]
        else:
            rows_before = previous[0]
            # Without a key, a page of identical rows (a query's constant column) proves nothing.
            same = rows == rows_before and any(row != rows[0] for row in rows)
        if same:
            raise PaginationError(
                f"{self.spec.operation or 'list'}: the page at Offset={entry.start} is the same as the page "
                "before it; the server seems to ignore Offset, and the stream would repeat rows forever",
                operation=self.spec.operation,
                offset=entry.start,
                limit=entry.asked,
            )

    async def _resync(self, start: int, asked: int) -> tuple[int, list[T], list[Any] | None]:
        """Step back from ``start``, doubling the distance, until a page holds a row already read."""
        self.resyncs += 1
        if self.resyncs > MAX_RESYNCS:
            raise PaginationError(
                f"{self.spec.operation or 'list'}: lost its place {MAX_RESYNCS} times; the list changes "
                "faster than it can be read",
                operation=self.spec.operation,
                offset=start,
                limit=asked,
            )
        back = max(asked - self._overlap(asked), 1)
        while True:
            probe = max(start - back, 0)
            rows = await self.spec.fetch(probe, asked)
            keys = self._keys(rows)
            self.previous = (rows, keys)
            if probe == 0 or self._connects(keys):
                return probe, rows, keys
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
        if task is None:
            continue
        task.cancel()
        # Retrieve a finished task's exception so asyncio does not log "never retrieved".
        task.add_done_callback(lambda t: t.cancelled() or t.exception())
        tasks.append(task)
    return tasks
