"""A durable event store in one SQLite file: what was answered 200 is handled even after a restart.

The dedupe keys and the queue live in the same file and are written in one transaction, so a crash leaves
either both (the row is known and queued) or neither (the office's resend brings it again). Events are
deleted once their handlers ran; a restarted receiver hands every event still in the file to its handlers.
``synchronous=FULL`` by default: the 200 is sent after the batch reached the disk, not just the OS.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import anyio.to_thread

from odapi_async._util.sqlite import connect, run_script, transaction
from odapi_async.events._batch import Entry, decode_entry, encode_entry
from odapi_async.events._models import Event
from odapi_async.events._store import DEFAULT_HORIZON, StoreFull

T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS seen (key BLOB PRIMARY KEY, expires REAL NOT NULL) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS seen_expires ON seen (expires);
CREATE TABLE IF NOT EXISTS queue (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    failed INTEGER NOT NULL DEFAULT 0,
    event BLOB NOT NULL
);
"""
#: Expired keys are swept at most this often (a sweep is one indexed DELETE).
_SWEEP_EVERY = 60.0


class SQLiteEventStore:
    """The dedupe index and the queue in one SQLite file (see the module docstring)."""

    def __init__(
        self,
        path: str | Path,
        *,
        horizon: float = DEFAULT_HORIZON,
        max_queued: int = 1_000_000,
        synchronous: str = "FULL",
    ) -> None:
        if horizon <= 0 or max_queued < 1:
            raise ValueError("horizon and max_queued must be positive")
        if synchronous.upper() not in ("OFF", "NORMAL", "FULL", "EXTRA"):
            raise ValueError(f"unknown synchronous level {synchronous!r}")
        self.path: str = str(path)
        self.horizon = horizon
        self.max_queued = max_queued
        self.synchronous: str = synchronous.upper()
        self._db: sqlite3.Connection | None = None
        self._lock = threading.Lock()
        self._queued = 0  # rows in the queue table not failed (taken or not)
        self._cursor = 0  # highest seq handed out by take()
        self._last_sweep = 0.0

    def __repr__(self) -> str:
        return f"<SQLiteEventStore {self.path!r} queued={self._queued}>"

    async def _run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        db = self._db
        if db is None:
            raise RuntimeError("the event store is not open")

        def call() -> T:
            with self._lock:
                return fn(db)

        return await anyio.to_thread.run_sync(call)

    async def open(self) -> None:
        if self._db is not None:
            return

        def open_file() -> sqlite3.Connection:
            db = connect(self.path, synchronous=self.synchronous)
            try:
                run_script(db, _SCHEMA)
            except BaseException:
                db.close()
                raise
            return db

        self._db = await anyio.to_thread.run_sync(open_file)
        self._queued = await self._run(
            lambda db: int(db.execute("SELECT count(*) FROM queue WHERE failed = 0").fetchone()[0])
        )
        self._cursor = 0  # a new process hands out everything still queued

    async def close(self) -> None:
        db, self._db = self._db, None
        if db is not None:
            with self._lock:
                db.close()

    def outstanding(self) -> int:
        return self._queued

    async def put(self, entries: Sequence[Entry], *, enqueue: bool, now: float) -> int:
        if not entries:
            return 0
        expiry = now + self.horizon
        sweep = now - self._last_sweep >= _SWEEP_EVERY
        if sweep:
            self._last_sweep = now

        def write(db: sqlite3.Connection) -> int:
            room = self.max_queued - self._queued  # under the lock: concurrent puts see each other
            fresh = 0
            with transaction(db):
                if sweep:
                    db.execute("DELETE FROM seen WHERE expires <= ?", (now,))
                for entry in entries:
                    cur = db.execute(
                        "INSERT OR IGNORE INTO seen (key, expires) VALUES (?, ?)", (entry.key, expiry)
                    )
                    if cur.rowcount != 1:
                        continue
                    fresh += 1
                    if enqueue:
                        if fresh > room:
                            raise StoreFull(f"{self._queued} events are queued (bound {self.max_queued})")
                        db.execute("INSERT INTO queue (event) VALUES (?)", (encode_entry(entry),))
            if enqueue:
                self._queued += fresh
            return fresh

        return await self._run(write)

    async def take(self, limit: int) -> list[Event[Any]]:
        cursor = self._cursor
        rows = await self._run(
            lambda db: db.execute(
                "SELECT seq, event FROM queue WHERE seq > ? AND failed = 0 ORDER BY seq LIMIT ?",
                (cursor, limit),
            ).fetchall()
        )
        if rows:
            self._cursor = rows[-1][0]
        return [decode_entry(seq, blob) for seq, blob in rows]

    async def done(self, seqs: Sequence[int]) -> None:
        await self._forget(seqs, "DELETE FROM queue WHERE seq = ?")

    async def failed(self, seqs: Sequence[int]) -> None:
        await self._forget(seqs, "UPDATE queue SET failed = 1 WHERE seq = ?")

    async def _forget(self, seqs: Sequence[int], sql: str) -> None:
        if not seqs:
            return

        def write(db: sqlite3.Connection) -> None:
            with transaction(db):  # one transaction (one fsync) for the whole batch
                db.executemany(sql, [(s,) for s in seqs])
            self._queued -= len(seqs)

        await self._run(write)

    async def failed_events(self, limit: int = 100) -> list[Event[Any]]:
        """Events whose handlers gave up (oldest first), for inspection or a manual replay."""
        rows = await self._run(
            lambda db: db.execute(
                "SELECT seq, event FROM queue WHERE failed = 1 ORDER BY seq LIMIT ?", (limit,)
            ).fetchall()
        )
        return [decode_entry(seq, blob) for seq, blob in rows]
