"""The local copy: one SQLite file, one table per resource, rows of many offices side by side.

Each table has an ``office`` column and one column per model field, keyed by (office, primary key). Values are
stored as SQLite understands them: integers and booleans as INTEGER, floats as REAL, dates and datetimes as
``yyyy-MM-dd[ HH:mm:ss]`` text (``None`` for the API's ``0001-01-01``), lists and objects as JSON text.

Every page is written in one transaction, and a resource's watermark only in the transaction that ends its run,
after the rows it covers: a process killed at any moment leaves either the old watermark (the run is done again)
or the new one with every row it covers. SQLite's WAL journal makes each commit atomic against a kill.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import math
import os
import socket
import sqlite3
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Union, get_args, get_origin

import msgspec

from odapi_async._exceptions import OpenDentalError
from odapi_async._syncspec import SyncSpec
from odapi_async._util.sqlite import BUSY_TIMEOUT, connect, run_script, transaction

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
CREATE TABLE IF NOT EXISTS odapi_sync_run (  -- the one run syncing each office now (see SyncStore.claim)
    office TEXT PRIMARY KEY,
    run TEXT NOT NULL,         -- the run's id (random)
    holder TEXT NOT NULL,      -- host:pid of its process (for the message, and to free a dead local holder)
    started_at TEXT NOT NULL,  -- UTC, ISO 8601
    expires REAL NOT NULL      -- Unix time: the claim lapses unless renewed before
);
-- Keys seen by a run's whole listing still under way: one row per page, its keys as a JSON array (as PostgreSQL
-- keeps one array per page): a page costs one row and one index entry, not one of each per key.
CREATE TABLE IF NOT EXISTS odapi_sync_listed (
    office TEXT NOT NULL,
    resource TEXT NOT NULL,
    run TEXT NOT NULL,
    pks TEXT NOT NULL          -- JSON array of the page's primary keys
);
CREATE INDEX IF NOT EXISTS odapi_sync_listed_run ON odapi_sync_listed (office, resource, run);
DROP TABLE IF EXISTS odapi_sync_listing;  -- the earliest form, without the run: transient, nothing to keep
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
        self.table: str = spec.resource
        fields = [f for f in msgspec.structs.fields(model) if f.name not in SERVER_COMPUTED]
        self.field_names: list[str] = [f.name for f in fields]
        self.columns: list[str] = _column_names(self.field_names)
        self.types: list[str] = [_sql_type(f.type) for f in fields]
        self.pk_column: str = self.columns[self.field_names.index(spec.primary_key)]
        self._pk_index = self.field_names.index(spec.primary_key)
        self.rows: Callable[[str, Sequence[Any]], list[list[Any]]] = _compile_rows(model)
        """``rows(office, page)``: the page's rows as the table's rows (``office`` first, then the columns)."""
        cols = ", ".join(f'"{c}"' for c in ("office", *self.columns))
        marks = ", ".join("?" for _ in range(len(self.columns) + 1))
        updates = ", ".join(f'"{c}" = excluded."{c}"' for c in self.columns if c != self.pk_column)
        # An update in place, not INSERT OR REPLACE (a delete and an insert, the row's indexes rewritten): the same
        # row in the end, for less; a column of the table that the model lacks keeps its value.
        self.upsert_sql: str = (
            f'INSERT INTO "{self.table}" ({cols}) VALUES ({marks}) '
            f'ON CONFLICT (office, "{self.pk_column}") DO UPDATE SET {updates}'
        )

    def create_sql(self) -> str:
        cols = ", ".join(f'"{c}" {t}' for c, t in zip(self.columns, self.types, strict=True))
        return (
            f'CREATE TABLE IF NOT EXISTS "{self.table}" (office TEXT NOT NULL, {cols}, '
            f'PRIMARY KEY (office, "{self.pk_column}"))'
        )

    def values(self, office: str, row: Any) -> tuple[Any, ...]:
        """One row as the table holds it (``office`` first, then the columns; NULL as None)."""
        return tuple(None if x is _NULL else x for x in self.rows(office, (row,))[0])

    def keys(self, values: Sequence[Sequence[Any]]) -> list[Any]:
        """The primary keys of rows made by :attr:`rows`."""
        at = self._pk_index + 1
        return [v[at] for v in values]

    def key(self, row: Any) -> Any:
        return getattr(row, self.spec.primary_key)


@dataclass(frozen=True)
class RunHolder:
    """The run that holds an office of a store (``SyncStore.claim``): where it runs and since when."""

    holder: str
    """``host:pid`` of its process."""
    started_at: str
    """UTC, ISO 8601."""


class SyncStore:
    """A SQLite file holding the synced rows and each (office, resource)'s watermark.

    Thread-safe: one connection, one writer at a time (the engine calls it from worker threads).

    **Runs.** A run of an office (``sync_office``) first takes the office's claim (:meth:`claim`): one run per office
    of a store at a time, across processes. The claim is a row of ``odapi_sync_run`` with an expiry the run renews
    (:meth:`renew`); a process that dies stops renewing and its claim lapses after ``ttl`` seconds, or at once
    when its process is found gone on this host. Every write made for a run (``run=``) checks, in its own
    transaction, that the run still holds the office, and a whole listing's keys are stored under the run's id:
    two runs never judge each other's listings, and a run that lost its claim (paused past its expiry while
    another took the office) writes nothing more (:class:`ClaimLost`).
    """

    def __init__(self, path: str | Path) -> None:
        self.path: Path = Path(path)
        self._lock = threading.Lock()
        try:
            # NORMAL in WAL mode: a commit survives a killed process (not always a power cut), and is much faster.
            self._conn = connect(self.path, synchronous="NORMAL")
        except sqlite3.Error as exc:
            raise StoreFileError(self.path, exc) from exc
        try:
            self._forget_old_listings()
            run_script(self._conn, _META)
        except sqlite3.Error as exc:
            self._conn.close()
            raise StoreFileError(self.path, exc) from exc
        self._ready: set[str] = set()
        self._tokens: dict[str, int] = {}

    def _forget_old_listings(self) -> None:
        """Drop ``odapi_sync_listed`` in its form before this one (a row per key): it holds only the keys of
        listings under way, which a run of that form then fails to finish (no column ``pk``: it removes nothing,
        saves no watermark), and each office's next run lists again. The check is repeated under the write lock,
        so two processes opening the file at once never drop a table the other has just made."""

        def old_form() -> bool:
            return any(r[1] == "pk" for r in self._conn.execute("PRAGMA table_info(odapi_sync_listed)"))

        if not old_form():  # a read only: a file this user may only read opens as before
            return
        with transaction(self._conn) as conn:
            if old_form():
                conn.execute("DROP TABLE odapi_sync_listed")

    def fence(self, office: str, token: int) -> None:
        """Write ``office`` under a fleet's fencing token from now on (``sync/_fleet.py``).

        Every later write of the office checks, in its own transaction, that no newer holder has written since;
        a stale holder's write is rolled back and raises :class:`FencedOut`. A fenced office's :meth:`claim`
        always succeeds: the fleet's lease decides which worker syncs it, the fence and the claim keep the
        older holder from writing.
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

    def _check(self, conn: sqlite3.Connection, office: str, run: str | None) -> None:
        """Inside a write's transaction: the fleet's fence, then the run's claim (``run=None``: a write of no
        run, such as an API Event's row, checks only the fence)."""
        self._check_fence(conn, office)
        if run is None:
            return
        row = conn.execute("SELECT run FROM odapi_sync_run WHERE office = ?", (office,)).fetchone()
        if row is None or row[0] != run:
            raise ClaimLost(office)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    @contextlib.contextmanager
    def _using(self, office: str | None = None, table: str | None = None) -> Iterator[None]:
        """The connection, one thread at a time; a failure of the file as a whole becomes :class:`StoreFileError`,
        any other failure of a write of ``office``'s rows in ``table`` :class:`StoreWriteError` (that office's)."""
        with self._lock:
            try:
                yield
            except (sqlite3.Error, OverflowError) as exc:  # OverflowError: a value SQLite cannot hold
                if isinstance(exc, sqlite3.Error) and _file_cause(exc) is not None:
                    raise StoreFileError(self.path, exc) from exc
                if office is None or table is None:
                    raise StoreFileError(self.path, exc) from exc
                raise StoreWriteError(office, table, exc) from exc

    def __enter__(self) -> SyncStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------------------------------ runs

    def claim(self, office: str, run: str, *, ttl: float) -> RunHolder | None:
        """Take ``office`` for ``run`` for ``ttl`` seconds; None when taken, else the live run that holds it.

        Free means: no claim, an expired one, or one whose process is gone (same host, no such pid). Taking the
        office forgets the listing keys of every other run of it (they hold it no more: none of their writes can
        commit). Never waits for another run: the caller decides how long to try (the engine: ``claim_wait``).
        """
        now = time.time()
        holder = _HOLDER
        with self._using(), transaction(self._conn) as conn:
            row = conn.execute(
                "SELECT run, holder, started_at, expires FROM odapi_sync_run WHERE office = ?", (office,)
            ).fetchone()
            if (
                row is not None
                and row[0] != run
                and row[3] > now
                and office not in self._tokens
                and not _gone(row[1])
            ):
                return RunHolder(row[1], row[2])
            started = dt.datetime.fromtimestamp(now, dt.timezone.utc).isoformat(timespec="seconds")
            conn.execute(
                "INSERT OR REPLACE INTO odapi_sync_run VALUES (?, ?, ?, ?, ?)",
                (office, run, holder, started, now + ttl),
            )
            conn.execute("DELETE FROM odapi_sync_listed WHERE office = ? AND run != ?", (office, run))
        return None

    def renew(self, office: str, run: str, *, ttl: float) -> bool:
        """Extend ``run``'s claim of ``office`` by ``ttl`` seconds from now; False when it holds it no more."""
        with self._using(), transaction(self._conn) as conn:
            return (
                conn.execute(
                    "UPDATE odapi_sync_run SET expires = ? WHERE office = ? AND run = ?",
                    (time.time() + ttl, office, run),
                ).rowcount
                == 1
            )

    def release(self, office: str, run: str) -> None:
        """Give up ``run``'s claim of ``office`` (nothing when it holds it no more), with its listing keys."""
        with self._using(), transaction(self._conn) as conn:
            conn.execute("DELETE FROM odapi_sync_run WHERE office = ? AND run = ?", (office, run))
            conn.execute("DELETE FROM odapi_sync_listed WHERE office = ? AND run = ?", (office, run))

    # ------------------------------------------------------------------------------------------ schema

    def prepare(self, layout: TableLayout) -> None:
        """Create the table, or add the columns a newer model has (new Open Dental versions add fields)."""
        if layout.table in self._ready:
            return
        # One write, the lock taken first: two processes preparing one table at once neither fail on a stale read
        # (see run_script) nor both add the same column.
        with self._using(), transaction(self._conn) as conn:
            conn.execute(layout.create_sql())
            have = {r[1].lower() for r in conn.execute(f'PRAGMA table_info("{layout.table}")')}
            for column, sql_type in zip(layout.columns, layout.types, strict=True):
                if column.lower() not in have:
                    conn.execute(f'ALTER TABLE "{layout.table}" ADD COLUMN "{column}" {sql_type}')
        self._ready.add(layout.table)

    # ------------------------------------------------------------------------------------------ writes

    def write_page(
        self, layout: TableLayout, office: str, rows: Sequence[Any], *, listing: bool, run: str | None = None
    ) -> None:
        """Upsert one page by primary key (and note its keys under ``run`` when it is part of a whole listing).

        ``run``: the run writing (it must hold the office, else :class:`ClaimLost`); None for a write of no run.
        """
        if listing and run is None:
            raise ValueError("a whole listing belongs to a run: pass the run that claimed the office")
        values = layout.rows(office, rows)
        keys = _json_text(layout.keys(values)) if listing else None
        with self._using(office, layout.table), transaction(self._conn) as conn:
            self._check(conn, office, run)
            conn.executemany(layout.upsert_sql, values)
            if listing:
                conn.execute(
                    "INSERT INTO odapi_sync_listed VALUES (?, ?, ?, ?)", (office, layout.table, run, keys)
                )

    def remove(self, layout: TableLayout, office: str, keys: Sequence[Any], *, run: str | None = None) -> int:
        """Delete rows by primary key (a deletion the office announced); returns the rows removed."""
        with self._using(office, layout.table), transaction(self._conn) as conn:
            self._check(conn, office, run)
            return conn.executemany(
                f'DELETE FROM "{layout.table}" WHERE office = ? AND "{layout.pk_column}" = ?',
                [(office, key) for key in keys],
            ).rowcount

    def begin_listing(self, office: str, resource: str, *, run: str) -> None:
        """Forget ``run``'s keys of an earlier whole listing of ``resource`` (one it began again)."""
        with self._using(), transaction(self._conn) as conn:
            self._check(conn, office, run)
            conn.execute(
                "DELETE FROM odapi_sync_listed WHERE office = ? AND resource = ? AND run = ?",
                (office, resource, run),
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
        run: str | None = None,
    ) -> int:
        """End a run of a resource in one transaction: remove the rows ``run``'s whole listing did not list, or
        the ``deleted`` keys (from a deletion log); save the watermark. Returns the rows removed."""
        if listing and run is None:
            raise ValueError("a whole listing belongs to a run: pass the run that claimed the office")
        removed = 0
        resource = layout.table
        now = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
        with self._using(office, resource), transaction(self._conn) as conn:
            self._check(conn, office, run)
            if deleted:
                removed += conn.executemany(
                    f'DELETE FROM "{resource}" WHERE office = ? AND "{layout.pk_column}" = ?',
                    [(office, key) for key in deleted],
                ).rowcount
            if listing:
                removed += conn.execute(
                    f'DELETE FROM "{resource}" WHERE office = ? AND "{layout.pk_column}" NOT IN '
                    "(SELECT k.value FROM odapi_sync_listed AS l, json_each(l.pks) AS k "
                    "WHERE l.office = ? AND l.resource = ? AND l.run = ?)",
                    (office, office, resource, run),
                ).rowcount
                conn.execute(
                    "DELETE FROM odapi_sync_listed WHERE office = ? AND resource = ? AND run = ?",
                    (office, resource, run),
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
        with self._using():
            return self._state(self._conn, office, resource)

    @staticmethod
    def _state(conn: sqlite3.Connection, office: str, resource: str) -> SyncState | None:
        row = conn.execute(
            "SELECT watermark, synced_at, listed_rows FROM odapi_sync_state WHERE office = ? AND resource = ?",
            (office, resource),
        ).fetchone()
        return SyncState(*row) if row else None

    def count(self, resource: str, office: str) -> int:
        with self._using():
            if not self._conn.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (resource,)
            ).fetchone():
                return 0  # no such table yet
            row = self._conn.execute(
                f'SELECT count(*) FROM "{resource}" WHERE office = ?', (office,)
            ).fetchone()
        return int(row[0])


#: This process, as a claim names it.
_HOLDER = f"{socket.gethostname()}:{os.getpid()}"


def _gone(holder: str) -> bool:
    """Whether the claim's process is known to be dead: on this host, no such process (or a zombie). Unknown
    (another host, Windows, no permission) counts as alive: the claim then lapses at its expiry."""
    host, _, pid_text = holder.rpartition(":")
    if host != socket.gethostname() or not pid_text.isdigit() or sys.platform == "win32":
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # EPERM: it exists (another user's)
        return False
    try:  # a killed child its parent has not reaped yet: dead, though the pid exists
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] == "Z"
    except (OSError, IndexError):
        return False


#: SQLite's primary result codes that concern the file as a whole, and what they mean to the reader.
_FILE_CAUSES = {
    3: "permission denied",  # SQLITE_PERM
    5: f"locked by another process for more than {BUSY_TIMEOUT:g} s",  # SQLITE_BUSY
    6: f"locked by another process for more than {BUSY_TIMEOUT:g} s",  # SQLITE_LOCKED
    8: "read-only",  # SQLITE_READONLY
    10: "input/output error (is the disk full or gone?)",  # SQLITE_IOERR
    11: "damaged (not a valid SQLite database any more)",  # SQLITE_CORRUPT
    13: "disk full",  # SQLITE_FULL
    14: "cannot be opened (does its folder exist, and may this user write there?)",  # SQLITE_CANTOPEN
    26: "not a SQLite database",  # SQLITE_NOTADB
}
#: The same, from the message (Python 3.10's sqlite3 errors carry no code).
_FILE_MESSAGES = {
    "disk is full": 13,
    "readonly": 8,
    "unable to open": 14,
    "not a database": 26,
    "malformed": 11,
    "is locked": 5,
    "disk i/o error": 10,
}


def _file_cause(exc: sqlite3.Error) -> str | None:
    """What a SQLite error says about the whole file (disk full, read-only, ...), or None (a row's problem)."""
    code = getattr(exc, "sqlite_errorcode", None)
    if code is None:
        text = str(exc).lower()
        code = next((c for part, c in _FILE_MESSAGES.items() if part in text), None)
    return _FILE_CAUSES.get(code & 0xFF) if code is not None else None


def _where_it_cannot_write(path: Path) -> str | None:
    """Why SQLite cannot write at ``path`` (it says only "unable to open" when its journal cannot be made)."""
    folder = path.parent
    if not folder.is_dir():
        return f"cannot be opened: the folder {folder} does not exist"
    target = path if path.exists() else folder
    if os.access(target, os.W_OK) and os.access(folder, os.W_OK):
        return None
    try:
        on_read_only_fs = bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
    except (OSError, AttributeError):  # AttributeError: no statvfs (Windows)
        on_read_only_fs = False
    if on_read_only_fs:
        return "read-only (on a read-only file system)"
    if target is path:
        return "read-only (this user may not write the file; SQLite also writes beside it, -wal and -shm)"
    return f"read-only (this user may not write in {folder}, where SQLite keeps its -wal and -shm files)"


class StoreFileError(OpenDentalError):
    """The store's file failed as a whole (disk full, read-only, not a database, locked too long): a run stops.

    Every write is one transaction, so the file keeps every write made before the failure and none of the
    failed one; once the cause is gone, the next run goes on from the saved watermarks.
    """

    def __init__(self, path: Path | str, exc: BaseException, *, cause: str | None = None) -> None:
        """``path``: the file (another store: where it is, with no password); ``cause``: given by a store that is
        not SQLite, else read from SQLite's error."""
        self.path = path
        if cause is None and isinstance(exc, sqlite3.Error):
            cause = _file_cause(exc)
            if cause in (_FILE_CAUSES[8], _FILE_CAUSES[14]) and isinstance(path, Path):
                cause = _where_it_cannot_write(path) or cause
        self.cause: str = cause or "cannot be used"
        engine = "SQLite" if isinstance(exc, sqlite3.Error) else type(exc).__name__
        super().__init__(f"{path}: {self.cause} ({engine}: {exc})")


class StoreWriteError(OpenDentalError):
    """One office's rows could not be written (a value SQLite refuses, a trigger, a constraint): that office fails."""

    def __init__(self, office: str, table: str, exc: BaseException) -> None:
        self.office: str = office
        self.table: str = table
        super().__init__(f"could not write {table} of office {office}: {exc}")


class ClaimLost(OpenDentalError):
    """Another run took this office of the store over (this run's claim lapsed): its write was rolled back."""

    def __init__(self, office: str) -> None:
        self.office = office
        super().__init__(
            f"office {office}: another run took this office of the store over (this run's claim lapsed while "
            "it was stalled); its write was rolled back"
        )


class FencedOut(OpenDentalError):
    """A newer holder of the office's fleet lease has written to this store: this worker's write was dropped."""

    def __init__(self, office: str, token: int, newer: int) -> None:
        self.office: str = office
        self.token: int = token
        self.newer: int = newer
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


def _json_text(value: Any) -> str:
    return msgspec.json.encode(value).decode()


def _conversion(hint: Any) -> str | None:
    """How a field's value ``x`` (not None) becomes what SQLite stores, as an expression; None: as it is."""
    hint = _unwrap(hint)
    if hint in (int, float, str):
        return None
    if hint is bool:
        # sqlite3 binds a bool only after looking for an adapter (slow): give it the int it would have stored.
        return "(1 if x else 0)"
    if hint is dt.datetime:
        return 'x.isoformat(" ")'
    if hint is dt.date:
        return "x.isoformat()"
    return "json_text(x)"


#: What a None becomes for SQLite: NaN, which SQLite stores as NULL (sqlite3 binds a float at once, but looks for
#: an adapter for None first: several times the cost of a value, on every nullable column of every row).
_NULL = math.nan


@functools.cache
def _compile_rows(model: type[msgspec.Struct]) -> Callable[[str, Sequence[Any]], list[list[Any]]]:
    """A function making a page's table rows for ``model``, written out for its fields once (the per-row work is
    one ``astuple`` and a statement for each field that needs converting, no loop over the fields)."""
    fields = msgspec.structs.fields(model)
    lines, dropped = [], []
    for i, f in enumerate(fields, start=1):  # v[0] is the office
        if f.name in SERVER_COMPUTED:
            dropped.append(i)
            continue
        conversion = _conversion(f.type)
        if conversion is not None:
            lines.append(f"x = v[{i}]")
            lines.append(f"v[{i}] = NULL if x is None else {conversion}")
        elif _unwrap(f.type) is not f.type:  # Optional: None becomes NULL the cheap way
            lines.append(f"if v[{i}] is None: v[{i}] = NULL")
    lines += [f"del v[{i}]" for i in reversed(dropped)]
    body = "".join(f"        {line}\n" for line in lines)
    source = (
        "def rows(office, page):\n"
        "    out = []\n"
        "    for row in page:\n"
        "        v = [office, *astuple(row)]\n"
        f"{body}"
        "        out.append(v)\n"
        "    return out\n"
    )
    namespace: dict[str, Any] = {"astuple": msgspec.structs.astuple, "NULL": _NULL, "json_text": _json_text}
    exec(compile(source, f"<rows of {model.__name__}>", "exec"), namespace)
    rows: Callable[[str, Sequence[Any]], list[list[Any]]] = namespace["rows"]
    return rows
