"""Encoded list pages kept until the data changes: the same page asked again costs a dict look-up, not a query.

A benchmark's offices (and a stream's read-ahead, and retries) ask the same pages of the same practice over and
over, and rendering a page is most of what the emulator spends on it (SQLite builds the JSON of every row: about
0.4 ms for 100 patients). A page is kept under its SQL and parameters (serverDateTime is a parameter, so a page
that carries it is another entry each second) and is valid only while the database is unchanged, which SQLite
itself tells: ``total_changes`` counts every row written on this connection, ``data_version`` moves when another
connection commits, ``schema_version`` when a table or index is created or dropped. Inside an open transaction
nothing is kept or served (a rollback takes changes back without taking back the count).
"""

from __future__ import annotations

import sqlite3
from collections import OrderedDict
from collections.abc import Callable, Hashable

#: Bytes of pages kept, the least recently used dropped first (a 1000-row page of appointments is ~0.4 MB).
DEFAULT_BUDGET = 32_000_000

_VERSION_SQL = "SELECT (SELECT data_version FROM pragma_data_version), (SELECT schema_version FROM pragma_schema_version)"


class PageCache:
    """Pages of one connection by (SQL, parameters); emptied whenever the database may have changed."""

    def __init__(self, db: sqlite3.Connection, budget: int = DEFAULT_BUDGET) -> None:
        self.db: sqlite3.Connection = db
        self.budget: int = budget
        self.hits: int = 0
        self.misses: int = 0
        self._pages: OrderedDict[Hashable, bytes] = OrderedDict()
        self._bytes = 0
        self._version: tuple[int, int, int] | None = None

    def _current(self) -> tuple[int, int, int]:
        data, schema = self.db.execute(_VERSION_SQL).fetchone()
        return self.db.total_changes, int(data), int(schema)

    def get(self, key: Hashable, render: Callable[[], bytes]) -> bytes:
        """The page under ``key``: kept if the database is unchanged since it was rendered, else ``render()``."""
        if self.budget <= 0 or self.db.in_transaction:
            return render()
        version = self._current()  # read before rendering: a write meanwhile makes the next look-up miss
        if version != self._version:
            self.clear()
            self._version = version
        page = self._pages.get(key)
        if page is not None:
            self._pages.move_to_end(key)
            self.hits += 1
            return page
        self.misses += 1
        page = render()
        if len(page) <= self.budget:
            self._pages[key] = page
            self._bytes += len(page)
            while self._bytes > self.budget:
                _, dropped = self._pages.popitem(last=False)
                self._bytes -= len(dropped)
        return page

    def clear(self) -> None:
        self._pages.clear()
        self._bytes = 0
