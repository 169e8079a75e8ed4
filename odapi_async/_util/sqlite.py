"""The two SQLite habits the sync's copy and the durable event store share: how a file is opened, and a write.

Both run their connection in autocommit mode (``isolation_level=None``) and open each write themselves with
``BEGIN IMMEDIATE``: the write lock is taken at the start, so a second writer waits (up to the busy timeout)
instead of failing half-way with "database is locked" when it tries to upgrade a read.
"""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

__all__ = ["BUSY_TIMEOUT", "connect", "transaction"]

#: Seconds a writer waits for another's lock before SQLite gives up.
BUSY_TIMEOUT = 10.0


def connect(path: str | Path, *, synchronous: str) -> sqlite3.Connection:
    """A connection in autocommit mode and WAL journal, usable from any thread (callers hold a lock)."""
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=BUSY_TIMEOUT)
    try:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute(f"PRAGMA synchronous={synchronous}")
    except BaseException:
        db.close()
        raise
    return db


# Lower-case: it reads as a function at the call site, ``with transaction(db):``.
class transaction:
    """``BEGIN IMMEDIATE`` … ``COMMIT``, or ``ROLLBACK`` on any error, ``BaseException`` included."""

    __slots__ = ("conn",)

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def __enter__(self) -> sqlite3.Connection:
        self.conn.execute("BEGIN IMMEDIATE")
        return self.conn

    def __exit__(self, exc_type: type[BaseException] | None, *rest: object) -> None:
        if exc_type is None:
            try:
                self.conn.execute("COMMIT")
            except BaseException:  # a COMMIT that fails (disk full) can leave the transaction open
                self._rollback()
                raise
        else:
            self._rollback()

    def _rollback(self) -> None:
        # SQLite has already rolled back after some errors (disk full, I/O); a ROLLBACK that fails too must not
        # hide the error that caused it (a failed transaction is undone on the next open anyway).
        if self.conn.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                self.conn.execute("ROLLBACK")
