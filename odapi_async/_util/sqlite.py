"""The two SQLite habits the sync's copy and the durable event store share: how a file is opened, and a write.

Both run their connection in autocommit mode (``isolation_level=None``) and open each write themselves with
``BEGIN IMMEDIATE``: the write lock is taken at the start, so a second writer waits (up to the busy timeout)
instead of failing half-way with "database is locked" when it tries to upgrade a read.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from pathlib import Path

__all__ = ["BUSY_TIMEOUT", "connect", "run_script", "transaction"]

#: Seconds a writer waits for another's lock before SQLite gives up.
BUSY_TIMEOUT = 10.0


def connect(path: str | Path, *, synchronous: str) -> sqlite3.Connection:
    """A connection in autocommit mode and WAL journal, usable from any thread (callers hold a lock)."""
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=BUSY_TIMEOUT)
    try:
        _wal(db)
        db.execute(f"PRAGMA synchronous={synchronous}")
    except BaseException:
        db.close()
        raise
    return db


def _wal(db: sqlite3.Connection) -> None:
    """Put the file in WAL mode. On a fresh file that several processes open at once, SQLite refuses the change
    at once ("database is locked") while another makes it, without waiting for the busy timeout: try again, with
    short pauses, for up to that timeout."""
    deadline = time.monotonic() + BUSY_TIMEOUT
    pause = 0.002
    while True:
        try:
            db.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            busy = getattr(exc, "sqlite_errorcode", None) in (5, 6) or "locked" in str(exc)  # BUSY, LOCKED
            if not busy or time.monotonic() + pause > deadline:
                raise
        time.sleep(pause)  # a blocking wait, as SQLite's own busy wait is
        pause = min(pause * 2, 0.1)


def run_script(conn: sqlite3.Connection, script: str) -> None:
    """Run a schema script (``CREATE ... IF NOT EXISTS``) as one write that takes the lock first.

    Each statement run on its own in autocommit reads the schema, then takes the write lock; when another process
    wrote in between (two processes opening a fresh file at once), WAL refuses the stale read's write at once with
    "database is locked", without waiting for the busy timeout. ``BEGIN IMMEDIATE`` waits for the lock first.
    """
    # The BEGIN inside the script: ``executescript`` commits a transaction already open before it runs.
    try:
        conn.executescript(f"BEGIN IMMEDIATE;\n{script}\nCOMMIT;")
    except BaseException:
        _rollback(conn)
        raise


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
                _rollback(self.conn)
                raise
        else:
            _rollback(self.conn)


def _rollback(conn: sqlite3.Connection) -> None:
    # SQLite has already rolled back after some errors (disk full, I/O); a ROLLBACK that fails too must not hide
    # the error that caused it (a failed transaction is undone on the next open anyway).
    if conn.in_transaction:
        with contextlib.suppress(sqlite3.Error):
            conn.execute("ROLLBACK")
