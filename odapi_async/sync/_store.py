"""The local copy: one SQLite file, one table per resource, rows of many offices side by side.

Each table has an ``office`` column and one column per model field, keyed by (office, primary key). Values are
stored as SQLite understands them: integers and booleans as INTEGER, floats as REAL, dates and datetimes as
``yyyy-MM-dd[ HH:mm:ss]`` text (``None`` for the API's ``0001-01-01``), lists and objects as JSON text.

Every page is written in one transaction, and a resource's watermark only in the transaction that ends its run,
after the rows it covers: a process killed at any moment leaves either the old watermark (the run is done again)
or the new one with every row it covers. SQLite's WAL journal makes each commit atomic against a kill.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Union, get_args, get_origin

import msgspec

from .._exceptions import OpenDentalError
from .._sqlite import connect, transaction
from .._syncspec import SyncSpec

#: Computed by the server when it answers ("now"), not data: never stored.
SERVER_COMPUTED = frozenset({"serverDateTime"})

_META = """
CREATE TABLE IF NOT EXISTS odapi_sync_state (
    office TEXT NOT NULL,
    resource TEXT NOT NULL,
    watermark TEXT,            -- the office's clock, yyyy-MM-dd HH:mm:ss; NULL: next run lists everything
    synced_at TEXT NOT NULL,   -- UTC, ISO 8601
    listed_rows INTEGER NOT NULL,  -- rows the last complete whole listing returned (for the ETA)
    PRIMARY KEY (office, resource)
);
CREATE TABLE IF NOT EXISTS odapi_sync_fence (  -- a fleet's fencing token per office: the newest holder writes
    office TEXT PRIMARY KEY,
    token INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS odapi_sync_listing (  -- keys seen by a whole listing still under way
    office TEXT NOT NULL,
    resource TEXT NOT NULL,
    pk INTEGER NOT NULL,
    PRIMARY KEY (office, resource, pk)
) WITHOUT ROWID;
"""


@dataclass(frozen=True)
class SyncState:
    watermark: str | None
    synced_at: str
    listed_rows: int


class TableLayout:
    """How the rows of one resource's model become a table's rows."""

    def __init__(self, spec: SyncSpec, model: type[msgspec.Struct]) -> None:
        self.spec = spec
        self.model = model
        self.table = spec.resource
        fields = [f for f in msgspec.structs.fields(model) if f.name not in SERVER_COMPUTED]
        self.field_names = [f.name for f in fields]
        self.columns = _column_names(self.field_names)
        self.types = [_sql_type(f.type) for f in fields]
        # Only the fields whose Python value SQLite cannot take as is get a converter.
        self._convert = [(i, conv) for i, f in enumerate(fields) if (conv := _converter(f.type)) is not None]
        all_fields = [f.name for f in msgspec.structs.fields(model)]
        self._keep = [all_fields.index(name) for name in self.field_names]
        self.pk_column = self.columns[self.field_names.index(spec.primary_key)]
        self._pk_index = self.field_names.index(spec.primary_key)
        cols = ", ".join(f'"{c}"' for c in ("office", *self.columns))
        marks = ", ".join("?" for _ in range(len(self.columns) + 1))
        self.upsert_sql = f'INSERT OR REPLACE INTO "{self.table}" ({cols}) VALUES ({marks})'

    def create_sql(self) -> str:
        cols = ", ".join(f'"{c}" {t}' for c, t in zip(self.columns, self.types, strict=True))
        return (
            f'CREATE TABLE IF NOT EXISTS "{self.table}" (office TEXT NOT NULL, {cols}, '
            f'PRIMARY KEY (office, "{self.pk_column}"))'
        )

    def values(self, office: str, row: Any) -> tuple[Any, ...]:
        everything = msgspec.structs.astuple(row)
        values = [everything[i] for i in self._keep]
        for i, conv in self._convert:
            value = values[i]
            if value is not None:
                values[i] = conv(value)
        return (office, *values)

    def key(self, row: Any) -> Any:
        return getattr(row, self.spec.primary_key)


class SyncStore:
    """A SQLite file holding the synced rows and each (office, resource)'s watermark.

    Thread-safe: one connection, one writer at a time (the engine calls it from worker threads).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        # NORMAL in WAL mode: a commit survives a killed process (not always a power cut), and is much faster.
        self._conn = connect(self.path, synchronous="NORMAL")
        self._conn.executescript(_META)
        self._ready: set[str] = set()
        self._tokens: dict[str, int] = {}

    def fence(self, office: str, token: int) -> None:
        """Write ``office`` under a fleet's fencing token from now on (``sync/_fleet.py``).

        Every later write of the office checks, in its own transaction, that no newer holder has written since;
        a stale holder's write is rolled back and raises :class:`FencedOut`.
        """
        self._tokens[office] = token

    def _check_fence(self, conn: sqlite3.Connection, office: str) -> None:
        token = self._tokens.get(office)
        if token is None:
            return
        row = conn.execute("SELECT token FROM odapi_sync_fence WHERE office = ?", (office,)).fetchone()
        if row is not None and row[0] > token:
            raise FencedOut(office, token, row[0])
        if row is None or row[0] < token:
            conn.execute("INSERT OR REPLACE INTO odapi_sync_fence VALUES (?, ?)", (office, token))

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> SyncStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------------------------------ schema

    def prepare(self, layout: TableLayout) -> None:
        """Create the table, or add the columns a newer model has (new Open Dental versions add fields)."""
        if layout.table in self._ready:
            return
        with self._lock:
            self._conn.execute(layout.create_sql())
            have = {r[1].lower() for r in self._conn.execute(f'PRAGMA table_info("{layout.table}")')}
            for column, sql_type in zip(layout.columns, layout.types, strict=True):
                if column.lower() not in have:
                    self._conn.execute(f'ALTER TABLE "{layout.table}" ADD COLUMN "{column}" {sql_type}')
        self._ready.add(layout.table)

    # ------------------------------------------------------------------------------------------ writes

    def write_page(self, layout: TableLayout, office: str, rows: Sequence[Any], *, listing: bool) -> None:
        """Upsert one page by primary key (and note its keys when a whole listing is under way)."""
        values = [layout.values(office, row) for row in rows]
        with self._lock, transaction(self._conn) as conn:
            self._check_fence(conn, office)
            conn.executemany(layout.upsert_sql, values)
            if listing:
                conn.executemany(
                    "INSERT OR IGNORE INTO odapi_sync_listing VALUES (?, ?, ?)",
                    [(office, layout.table, layout.key(row)) for row in rows],
                )

    def remove(self, layout: TableLayout, office: str, keys: Sequence[Any]) -> int:
        """Delete rows by primary key (a deletion the office announced); returns the rows removed."""
        with self._lock, transaction(self._conn) as conn:
            self._check_fence(conn, office)
            return conn.executemany(
                f'DELETE FROM "{layout.table}" WHERE office = ? AND "{layout.pk_column}" = ?',
                [(office, key) for key in keys],
            ).rowcount

    def begin_listing(self, office: str, resource: str) -> None:
        """Forget the keys of an earlier whole listing that never finished."""
        with self._lock, transaction(self._conn) as conn:
            self._check_fence(conn, office)
            conn.execute(
                "DELETE FROM odapi_sync_listing WHERE office = ? AND resource = ?", (office, resource)
            )

    def finish(
        self,
        layout: TableLayout,
        office: str,
        *,
        watermark: str | None,
        listing: bool,
        listed_rows: int,
        deleted: Sequence[int] = (),
    ) -> int:
        """End a run in one transaction: remove the rows a whole listing did not list, or the ``deleted`` keys
        (from a deletion log); save the watermark. Returns the rows removed."""
        removed = 0
        resource = layout.table
        now = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
        with self._lock, transaction(self._conn) as conn:
            self._check_fence(conn, office)
            if deleted:
                removed += conn.executemany(
                    f'DELETE FROM "{resource}" WHERE office = ? AND "{layout.pk_column}" = ?',
                    [(office, key) for key in deleted],
                ).rowcount
            if listing:
                removed += conn.execute(
                    f'DELETE FROM "{resource}" WHERE office = ? AND "{layout.pk_column}" NOT IN '
                    "(SELECT pk FROM odapi_sync_listing WHERE office = ? AND resource = ?)",
                    (office, office, resource),
                ).rowcount
                conn.execute(
                    "DELETE FROM odapi_sync_listing WHERE office = ? AND resource = ?", (office, resource)
                )
            else:
                old = self._state(conn, office, resource)
                listed_rows = old.listed_rows if old else 0
            conn.execute(
                "INSERT OR REPLACE INTO odapi_sync_state VALUES (?, ?, ?, ?, ?)",
                (office, resource, watermark, now, listed_rows),
            )
        return removed

    # ------------------------------------------------------------------------------------------- reads

    def state(self, office: str, resource: str) -> SyncState | None:
        with self._lock:
            return self._state(self._conn, office, resource)

    @staticmethod
    def _state(conn: sqlite3.Connection, office: str, resource: str) -> SyncState | None:
        row = conn.execute(
            "SELECT watermark, synced_at, listed_rows FROM odapi_sync_state WHERE office = ? AND resource = ?",
            (office, resource),
        ).fetchone()
        return SyncState(*row) if row else None

    def count(self, resource: str, office: str) -> int:
        with self._lock:
            try:
                row = self._conn.execute(
                    f'SELECT count(*) FROM "{resource}" WHERE office = ?', (office,)
                ).fetchone()
            except sqlite3.OperationalError:  # no such table yet
                return 0
        return int(row[0])


class FencedOut(OpenDentalError):
    """A newer holder of the office's fleet lease has written to this store: this worker's write was dropped."""

    def __init__(self, office: str, token: int, newer: int) -> None:
        self.office, self.token, self.newer = office, token, newer
        super().__init__(
            f"office {office}: a newer holder (fencing token {newer}) has written here; this worker's lease "
            f"(token {token}) expired, its write was rolled back"
        )


def _column_names(fields: Sequence[str]) -> list[str]:
    """Column per field; SQLite ignores case in names, and the API has pairs such as ``Confirmed`` (a DefNum)
    and ``confirmed`` (its text): the lower-case helper of such a pair becomes ``confirmed__derived``."""
    upper = {f.lower() for f in fields if f[:1].isupper()}
    used: set[str] = set()
    out = []
    for name in fields:
        column = name + "__derived" if name[:1].islower() and name.lower() in upper else name
        while column.lower() in used:
            column += "_"
        used.add(column.lower())
        out.append(column)
    return out


def _unwrap(hint: Any) -> Any:
    """``Optional[X]`` → ``X``."""
    if get_origin(hint) is Union:
        args = [a for a in get_args(hint) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return hint


def _sql_type(hint: Any) -> str:
    hint = _unwrap(hint)
    if hint in (int, bool):
        return "INTEGER"
    if hint is float:
        return "REAL"
    return "TEXT"


def _datetime_text(value: dt.datetime) -> str:
    return value.isoformat(" ")


def _json_text(value: Any) -> str:
    return msgspec.json.encode(value).decode()


def _converter(hint: Any) -> Callable[[Any], Any] | None:
    hint = _unwrap(hint)
    if hint in (int, bool, float, str):
        return None
    if hint is dt.datetime:
        return _datetime_text
    if hint is dt.date:
        return dt.date.isoformat
    return _json_text
