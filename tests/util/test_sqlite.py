"""The SQLite helpers the sync's copy and the event store share: a real file, two connections."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from odapi_async._util.sqlite import connect, transaction


class Stop(BaseException):
    """Like a cancellation or KeyboardInterrupt: not an Exception, still a rollback."""


def _count(db: sqlite3.Connection) -> int:
    return int(db.execute("SELECT count(*) FROM t").fetchone()[0])


@pytest.fixture
def db(tmp_path: Path):
    conn = connect(tmp_path / "x.sqlite", synchronous="NORMAL")
    conn.execute("CREATE TABLE t (v INTEGER)")
    yield conn
    conn.close()


def test_connect_opens_in_autocommit_and_wal(db: sqlite3.Connection) -> None:
    assert db.isolation_level is None and not db.in_transaction
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
    assert db.execute("PRAGMA busy_timeout").fetchone()[0] == 10_000


def test_a_transaction_commits_or_rolls_back_everything(db: sqlite3.Connection) -> None:
    with transaction(db) as conn:
        assert conn is db and db.in_transaction
        db.executemany("INSERT INTO t VALUES (?)", [(1,), (2,)])
    assert _count(db) == 2 and not db.in_transaction
    for error in (ValueError("bad row"), Stop()):
        with pytest.raises(type(error)), transaction(db):
            db.execute("INSERT INTO t VALUES (3)")
            raise error
        assert _count(db) == 2 and not db.in_transaction  # the half-done write is gone


def test_the_write_lock_is_taken_at_begin(tmp_path: Path, db: sqlite3.Connection) -> None:
    other = sqlite3.connect(tmp_path / "x.sqlite", isolation_level=None, timeout=0.0)
    try:
        with transaction(db):
            # Another writer is refused at once, before this one has written anything (BEGIN IMMEDIATE).
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                other.execute("BEGIN IMMEDIATE")
            db.execute("INSERT INTO t VALUES (1)")
        other.execute("BEGIN IMMEDIATE")  # free again after the commit
        other.execute("ROLLBACK")
    finally:
        other.close()
