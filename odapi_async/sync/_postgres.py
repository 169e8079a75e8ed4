"""The sync's copy in PostgreSQL: the tables, columns and rules of the SQLite store, in typed columns.

One table per resource (its URL segment), an ``office`` column, one column per model field (the same names as
in SQLite, ``__derived`` helpers included), primary key (``office``, the resource's key), and the same
``odapi_sync_state``, ``odapi_sync_fence``, ``odapi_sync_run`` and ``odapi_sync_listed`` tables. Column types:
integers ``bigint``, booleans ``boolean``, dates ``date``, datetimes ``timestamp`` (without time zone: the
office's clock), lists and objects ``jsonb``, text ``text``, and money ``double precision``: the API sends amounts
as JSON numbers and Open Dental keeps them as MySQL ``double``, so the column holds exactly what the office has
(round to ``numeric`` where a sum must be exact to the cent).

Every page is one transaction: a binary ``COPY`` into a temporary table, then ``INSERT ... ON CONFLICT (office,
key) DO UPDATE`` (and the page's keys, one array per page, into ``odapi_sync_listed`` under the run, when a whole
listing runs). Each write's transaction first checks the fleet's fencing token against ``odapi_sync_fence`` (the
row lock it takes orders the writers of one office; a write under an older token than the newest seen is rolled
back, :class:`FencedOut`), then that its run still holds the office's claim (:class:`ClaimLost`).

Driver: psycopg 3. It is libpq, so the password and every other setting come from where ``psql`` finds them
(``PGPASSWORD``, ``~/.pgpass``, ``PGSERVICE``, ``sslmode`` ...), and its binary ``COPY`` is C code; and its
blocking API fits the store's interface, which the engine calls from the store's own thread, so converting a page never
runs on the event loop that fetches the next one.
"""

from __future__ import annotations

import datetime as dt
import logging
import operator
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import msgspec

from odapi_async._util.optional import require_extra
from odapi_async.sync._sink import StoreError
from odapi_async.sync._store import (
    _HOLDER,
    ClaimLost,
    FencedOut,
    RunHolder,
    SyncState,
    TableLayout,
    _gone,
    _unwrap,
)

if TYPE_CHECKING:
    import psycopg

__all__ = ["PostgresStore"]

logger = logging.getLogger("odapi_async.sync")

#: Seconds to wait for the server to answer a connection.
CONNECT_TIMEOUT = 10
#: Bounds on waits inside the server: a lock held by a stalled writer, a transaction left open by a frozen one.
_SESSION = (
    "SET lock_timeout = '30s'",
    "SET idle_in_transaction_session_timeout = '20s'",
    "SET statement_timeout = '300s'",
)
WATERMARK_FORMAT = "%Y-%m-%d %H:%M:%S"

_META: dict[str, tuple[dict[str, str], tuple[str, ...]]] = {
    "odapi_sync_state": (
        {
            "office": "text",
            "resource": "text",
            "watermark": "timestamp without time zone",
            "synced_at": "timestamp with time zone",
            "listed_rows": "bigint",
        },
        ("office", "resource"),
    ),
    "odapi_sync_fence": ({"office": "text", "token": "bigint"}, ("office",)),
    "odapi_sync_run": (
        {
            "office": "text",
            "run": "text",
            "holder": "text",
            "backend": "integer",
            "started_at": "timestamp with time zone",
            "expires": "timestamp with time zone",
        },
        ("office",),
    ),
    "odapi_sync_listed": (
        {"office": "text", "resource": "text", "run": "text", "pks": "bigint[]"},
        (),
    ),
}
_META_SQL = """
CREATE TABLE IF NOT EXISTS odapi_sync_state (
    office text NOT NULL,
    resource text NOT NULL,
    watermark timestamp without time zone,  -- the office's clock; NULL: the next run lists everything
    synced_at timestamp with time zone NOT NULL,
    listed_rows bigint NOT NULL,            -- rows the last complete whole listing returned (for the ETA)
    PRIMARY KEY (office, resource)
);
CREATE TABLE IF NOT EXISTS odapi_sync_fence (office text PRIMARY KEY, token bigint NOT NULL);
CREATE TABLE IF NOT EXISTS odapi_sync_run (  -- the one run syncing each office now (see claim)
    office text PRIMARY KEY,
    run text NOT NULL,                       -- the run's id
    holder text NOT NULL,                    -- host:pid of its process
    backend integer NOT NULL,                -- its connection's server process: gone, the claim is free
    started_at timestamp with time zone NOT NULL,
    expires timestamp with time zone NOT NULL  -- the server's clock: one clock for every host of a fleet
);
-- Keys seen by a run's whole listing still under way: one row per page (its keys as an array), not one per key
-- as in SQLite: a page costs one index entry here, not a thousand.
CREATE TABLE IF NOT EXISTS odapi_sync_listed (
    office text NOT NULL,
    resource text NOT NULL,
    run text NOT NULL,
    pks bigint[] NOT NULL
);
CREATE INDEX IF NOT EXISTS odapi_sync_listed_run ON odapi_sync_listed (office, resource, run);
"""
#: Serializes schema changes between processes sharing the database (two workers creating one table).
_DDL_LOCK = 0x6F646170  # "odap"
#: With an office's hash: serializes the claims of one office (two runs finding no claim row at once).
_CLAIM_LOCK = 0x636C6169  # "clai"


def _pg_type(hint: Any) -> tuple[str, str]:
    """(column type as ``format_type`` spells it, the binary COPY type name)."""
    hint = _unwrap(hint)
    if hint is bool:
        return "boolean", "bool"
    if hint is int:
        return "bigint", "int8"
    if hint is float:
        return "double precision", "float8"
    if hint is dt.datetime:
        return "timestamp without time zone", "timestamp"
    if hint is dt.date:
        return "date", "date"
    if hint is str:
        return "text", "text"
    return "jsonb", "jsonb"


class _Table:
    """The PostgreSQL side of a :class:`TableLayout`: column types, the page's temporary table, the SQL."""

    def __init__(self, layout: TableLayout) -> None:
        model = layout.model
        hints = {f.name: f.type for f in msgspec.structs.fields(model)}
        typed = [_pg_type(hints[name]) for name in layout.field_names]
        self.name = layout.table
        self.columns = dict(zip(layout.columns, (t for t, _ in typed), strict=True))
        self.copy_types = ["text", *(c for _, c in typed)]
        everything = [f.name for f in msgspec.structs.fields(model)]
        self._pick = operator.itemgetter(*(everything.index(n) for n in layout.field_names))
        self._key_at = layout.field_names.index(layout.spec.primary_key)
        self.pk = layout.pk_column
        self.temp = f"odapi_page_{self.name}"
        cols = ", ".join(f'"{c}"' for c in ("office", *layout.columns))
        updates = ", ".join(f'"{c}" = EXCLUDED."{c}"' for c in layout.columns if c != self.pk)
        self.copy_sql = f'COPY "{self.temp}" ({cols}) FROM STDIN (FORMAT BINARY)'
        self.upsert_sql = (
            f'INSERT INTO "{self.name}" ({cols}) SELECT {cols} FROM "{self.temp}" '
            f'ON CONFLICT (office, "{self.pk}") DO UPDATE SET {updates}'
        )
        self.listing_sql = (
            f"INSERT INTO odapi_sync_listed (office, resource, run, pks) SELECT office, %s, %s, "
            f'array_agg("{self.pk}") FROM "{self.temp}" GROUP BY office'
        )
        defs = ", ".join(f'"{c}" {t}' for c, t in self.columns.items())
        self.create_sql = (
            f'CREATE TABLE IF NOT EXISTS "{self.name}" (office text NOT NULL, {defs}, '
            f'PRIMARY KEY (office, "{self.pk}"))'
        )

    def rows(self, office: str, rows: Sequence[Any]) -> list[tuple[Any, ...]]:
        """The page as COPY rows, one per key (the last wins, as SQLite's INSERT OR REPLACE would have it)."""
        by_key: dict[Any, tuple[Any, ...]] = {}
        pick, key_at = self._pick, self._key_at
        for row in rows:
            values = pick(msgspec.structs.astuple(row))
            by_key[values[key_at]] = (office, *values)
        return list(by_key.values())


class PostgresStore:
    """A PostgreSQL database holding the synced rows, watermarks and fencing tokens (``dsn``: a libpq URL or
    ``key=value`` string; the password from it, ``PGPASSWORD`` or ``~/.pgpass``).

    Opening connects and checks the database (reachable, login accepted, writable, the sync's tables usable),
    so a mistake is reported before any request to an office. Thread-safe: one connection, one writer at a
    time; a connection lost mid-run fails the write under way (rolled back) and the next call reconnects.
    """

    def __init__(self, dsn: str) -> None:
        require_extra("postgres", "PostgresStore (odapi sync --db postgresql://...)")
        import psycopg
        import psycopg.types.json
        from psycopg.conninfo import conninfo_to_dict

        self._psycopg = psycopg
        try:
            params = conninfo_to_dict(dsn)
        except psycopg.ProgrammingError:
            raise StoreError("not a valid PostgreSQL URL (postgresql://user@host:port/dbname)") from None
        self._dsn = dsn
        # Named in pg_stat_activity as "odapi sync", unless the URL names it (?application_name=worker-3).
        self._name = {} if params.get("application_name") else {"application_name": "odapi sync"}
        self._secret = str(params.get("password") or "")
        host = str(params.get("host") or "localhost")
        port = f":{params['port']}" if params.get("port") else ""
        self.where: str = (
            f"postgresql://{params.get('user') or ''}{'@' if params.get('user') else ''}{host}{port}/"
        )
        self.where += str(params.get("dbname") or "")
        self._lock = threading.Lock()
        self._conn: psycopg.Connection[Any] | None = None
        self._temps: set[str] = set()
        self._tables: dict[str, _Table] = {}
        self._tokens: dict[str, int] = {}
        with self._lock:
            self._connect()
            try:
                with self._errors("checking the database"):
                    self._prepare_meta()
            except BaseException:
                self._close()
                raise

    def __repr__(self) -> str:
        return f"PostgresStore({self.where!r})"

    # ------------------------------------------------------------------------------------ connection

    def _connect(self) -> psycopg.Connection[Any]:
        pg = self._psycopg
        try:
            conn: psycopg.Connection[Any] = pg.connect(
                self._dsn, autocommit=True, connect_timeout=CONNECT_TIMEOUT, **self._name
            )
        except pg.Error as exc:
            raise StoreError(f"cannot connect to {self.where}: {self._line(exc)}") from None
        try:
            pg.types.json.set_json_dumps(msgspec.json.encode, conn)
            for statement in _SESSION:
                conn.execute(statement)
        except pg.Error as exc:
            conn.close()
            raise StoreError(f"cannot use {self.where}: {self._line(exc)}") from None
        reconnected = self._conn is not None
        self._conn = conn
        self._temps = set()
        if reconnected:
            logger.warning("sync database: connected again to %s", self.where)
        else:
            logger.debug("sync database: connected to %s", self.where)
        return conn

    def _connection(self) -> psycopg.Connection[Any]:
        conn = self._conn
        if conn is None or conn.closed or conn.broken:
            if conn is not None:
                conn.close()
            conn = self._connect()
        return conn

    def _line(self, exc: BaseException) -> str:
        """The error as one line, without the password (libpq never quotes it, but a URL it cannot parse may)."""
        text = "; ".join(part.strip() for part in str(exc).splitlines() if part.strip()) or type(exc).__name__
        text = text.replace("connection failed: ", "")
        if self._secret:
            text = text.replace(self._secret, "***")
        return text

    @contextmanager
    def _errors(self, doing: str) -> Iterator[None]:
        """psycopg's errors as one-line :class:`StoreError` (FencedOut and StoreError pass through)."""
        psycopg = self._psycopg
        try:
            yield
        except psycopg.errors.InsufficientPrivilege as exc:
            raise StoreError(f"{self.where}: the role may not do this ({doing}): {self._line(exc)}") from None
        except psycopg.errors.ReadOnlySqlTransaction as exc:
            raise StoreError(f"{self.where} is read-only ({doing}): {self._line(exc)}") from None
        except psycopg.OperationalError as exc:
            raise StoreError(
                f"{self.where}: connection lost while {doing} (its transaction was rolled back): "
                f"{self._line(exc)}"
            ) from None
        except psycopg.Error as exc:
            raise StoreError(f"{self.where}: {doing} failed: {self._line(exc)}") from None

    @contextmanager
    def _transaction(
        self, doing: str, office: str | None = None, run: str | None = None
    ) -> Iterator[psycopg.Cursor[Any]]:
        """One transaction, under the lock, errors translated; a write of ``office`` checks first the fleet's
        fence, then that ``run`` (if any) still holds the office."""
        with self._lock, self._errors(doing):
            conn = self._connection()
            with conn.transaction(), conn.cursor() as cur:
                if office is not None:
                    self._check_fence(cur, office)
                if run is not None:
                    assert office is not None
                    # FOR SHARE: a claim taking the office over waits for this write, or this write sees it.
                    held = cur.execute(
                        "SELECT run FROM odapi_sync_run WHERE office = %s FOR SHARE", (office,)
                    ).fetchone()
                    if held is None or held[0] != run:
                        raise ClaimLost(office)
                yield cur

    def close(self) -> None:
        with self._lock:
            self._close()

    def _close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self) -> PostgresStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---------------------------------------------------------------------------------------- schema

    def _prepare_meta(self) -> None:
        conn = self._connection()
        read_only = conn.execute("SHOW transaction_read_only").fetchone()
        if read_only and read_only[0] == "on":
            raise StoreError(f"{self.where} is read-only (a standby, or default_transaction_read_only)")
        with conn.transaction(), conn.cursor() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(%s)", (_DDL_LOCK,))
            missing = [name for name in _META if not self._exists(cur, name)]
            if missing:
                cur.execute(_META_SQL)
            for name, (columns, key) in _META.items():
                self._check_table(cur, name, columns, key)

    @staticmethod
    def _exists(cur: psycopg.Cursor[Any], table: str) -> bool:
        row = cur.execute("SELECT to_regclass(%s)", (f'"{table}"',)).fetchone()
        return row is not None and row[0] is not None

    def _check_table(
        self, cur: psycopg.Cursor[Any], table: str, columns: dict[str, str], key: Sequence[str]
    ) -> list[str]:
        """Check an existing table can hold the sync's rows; returns the columns it lacks (to add)."""
        found = dict(
            cur.execute(
                "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute "
                "WHERE attrelid = to_regclass(%s) AND attnum > 0 AND NOT attisdropped",
                (f'"{table}"',),
            ).fetchall()
        )
        wrong = [
            f'column "{c}" is {found[c]}, not {t}' for c, t in columns.items() if c in found and found[c] != t
        ]
        if wrong:
            raise StoreError(
                f'{self.where}: table "{table}" exists with other columns than the sync writes '
                f"({'; '.join(wrong[:3])}): drop or rename it, or sync into another database"
            )
        keys = cur.execute(
            "SELECT array_agg(a.attname::text ORDER BY k.n) FROM pg_index i "
            "CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, n) "
            "JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum "
            "WHERE i.indrelid = to_regclass(%s) AND i.indisunique GROUP BY i.indexrelid",
            (f'"{table}"',),
        ).fetchall()
        if key and list(key) not in [k[0] for k in keys] and all(c in found for c in key):
            raise StoreError(
                f'{self.where}: table "{table}" has no unique key on ({", ".join(key)}), which the sync '
                "upserts by: drop or rename it, or sync into another database"
            )
        for privilege in ("SELECT", "INSERT", "UPDATE", "DELETE"):
            allowed = cur.execute(
                "SELECT has_table_privilege(to_regclass(%s), %s)", (f'"{table}"', privilege)
            )
            row = allowed.fetchone()
            if row is not None and not row[0]:
                raise StoreError(f'{self.where}: the role may not {privilege} table "{table}"')
        return [c for c in columns if c not in found]

    def _table(self, layout: TableLayout) -> _Table:
        table = self._tables.get(layout.table)
        if table is None:
            table = self._tables[layout.table] = _Table(layout)
        return table

    def prepare(self, layout: TableLayout) -> None:
        """Create the table, or add the columns a newer model has (new Open Dental versions add fields)."""
        if layout.table in self._tables:
            return
        table = _Table(layout)
        with self._transaction(f'preparing table "{table.name}"') as cur:
            cur.execute("SELECT pg_advisory_xact_lock(%s)", (_DDL_LOCK,))
            if not self._exists(cur, table.name):
                cur.execute(table.create_sql)
            key = ("office", table.pk)
            for column in self._check_table(cur, table.name, {"office": "text", **table.columns}, key):
                cur.execute(f'ALTER TABLE "{table.name}" ADD COLUMN "{column}" {table.columns[column]}')
        self._tables[layout.table] = table

    # ---------------------------------------------------------------------------------------- fencing

    def fence(self, office: str, token: int) -> None:
        """Write ``office`` under a fleet's fencing token from now on (see :class:`SyncSink`)."""
        self._tokens[office] = token

    def _check_fence(self, cur: psycopg.Cursor[Any], office: str) -> None:
        token = self._tokens.get(office)
        if token is None:
            return
        # Takes the office's fence row lock until commit: writers of one office go one after the other.
        newest = cur.execute(
            "INSERT INTO odapi_sync_fence AS f (office, token) VALUES (%s, %s) ON CONFLICT (office) "
            "DO UPDATE SET token = greatest(f.token, EXCLUDED.token) RETURNING token",
            (office, token),
        ).fetchone()
        if newest is not None and newest[0] > token:
            raise FencedOut(office, token, newest[0])

    # ------------------------------------------------------------------------------------------- runs

    def claim(self, office: str, run: str, *, ttl: float) -> RunHolder | None:
        """Take ``office`` for ``run`` for ``ttl`` seconds; None when taken, else the live run holding it.

        Free means: no claim, one past its expiry (the server's clock), one whose connection is gone from the
        server (its process died, wherever it ran), or one whose process is gone on this host. Never waits.
        """
        with self._transaction(f"claiming office {office}") as cur:
            cur.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (_CLAIM_LOCK, office))
            row = cur.execute(
                "SELECT run, holder, started_at, expires > clock_timestamp() AND EXISTS (SELECT 1 FROM "
                "pg_stat_activity a WHERE a.pid = r.backend) FROM odapi_sync_run r WHERE office = %s",
                (office,),
            ).fetchone()
            if (
                row is not None
                and row[0] != run
                and row[3]
                and office not in self._tokens
                and not _gone(row[1])
            ):
                return RunHolder(row[1], row[2].isoformat(timespec="seconds"))
            cur.execute(
                "INSERT INTO odapi_sync_run (office, run, holder, backend, started_at, expires) VALUES "
                "(%s, %s, %s, pg_backend_pid(), now(), clock_timestamp() + make_interval(secs => %s)) "
                "ON CONFLICT (office) DO UPDATE SET run = EXCLUDED.run, holder = EXCLUDED.holder, "
                "backend = EXCLUDED.backend, started_at = EXCLUDED.started_at, expires = EXCLUDED.expires",
                (office, run, _HOLDER, float(ttl)),
            )
            cur.execute("DELETE FROM odapi_sync_listed WHERE office = %s AND run <> %s", (office, run))
        return None

    def renew(self, office: str, run: str, *, ttl: float) -> bool:
        """Extend ``run``'s claim of ``office`` by ``ttl`` seconds from now; False when it holds it no more."""
        with self._transaction(f"renewing the claim of office {office}") as cur:
            cur.execute(
                "UPDATE odapi_sync_run SET expires = clock_timestamp() + make_interval(secs => %s), "
                "backend = pg_backend_pid() WHERE office = %s AND run = %s",
                (float(ttl), office, run),
            )
            return cur.rowcount == 1

    def release(self, office: str, run: str) -> None:
        """Give up ``run``'s claim of ``office`` (nothing when it holds it no more), with its listing keys."""
        with self._transaction(f"releasing office {office}") as cur:
            cur.execute("DELETE FROM odapi_sync_run WHERE office = %s AND run = %s", (office, run))
            cur.execute("DELETE FROM odapi_sync_listed WHERE office = %s AND run = %s", (office, run))

    # ----------------------------------------------------------------------------------------- writes

    def _temp(self, cur: psycopg.Cursor[Any], table: _Table) -> None:
        if table.temp not in self._temps:
            cur.execute(
                f'CREATE TEMP TABLE IF NOT EXISTS "{table.temp}" (LIKE "{table.name}") ON COMMIT DELETE ROWS'
            )
            self._temps.add(table.temp)

    def write_page(
        self, layout: TableLayout, office: str, rows: Sequence[Any], *, listing: bool, run: str | None = None
    ) -> None:
        """Upsert one page by primary key (and note its keys under ``run`` when it is part of a whole listing).

        ``run``: the run writing (it must hold the office, else :class:`ClaimLost`); None for a write of no run.
        """
        if listing and run is None:
            raise ValueError("a whole listing belongs to a run: pass the run that claimed the office")
        table = self._table(layout)
        values = table.rows(office, rows)
        if not values:
            return
        with self._transaction(f'writing a page of "{table.name}"', office, run) as cur:
            self._temp(cur, table)
            with cur.copy(table.copy_sql) as copy:
                copy.set_types(table.copy_types)
                for row in values:
                    copy.write_row(row)
            cur.execute(table.upsert_sql)
            if listing:
                cur.execute(table.listing_sql, (table.name, run))

    def remove(self, layout: TableLayout, office: str, keys: Sequence[Any], *, run: str | None = None) -> int:
        """Delete rows by primary key (a deletion the office announced); returns the rows removed."""
        table = self._table(layout)
        with self._transaction(f'removing rows of "{table.name}"', office, run) as cur:
            cur.execute(
                f'DELETE FROM "{table.name}" WHERE office = %s AND "{table.pk}" = ANY(%s)',
                (office, list(keys)),
            )
            return max(cur.rowcount, 0)

    def begin_listing(self, office: str, resource: str, *, run: str) -> None:
        """Forget ``run``'s keys of an earlier whole listing of ``resource`` (one it began again)."""
        with self._transaction(f'starting a listing of "{resource}"', office, run) as cur:
            cur.execute(
                "DELETE FROM odapi_sync_listed WHERE office = %s AND resource = %s AND run = %s",
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
        table = self._table(layout)
        name, pk = table.name, table.pk
        mark = dt.datetime.strptime(watermark, WATERMARK_FORMAT) if watermark else None
        removed = 0
        with self._transaction(f'finishing the run of "{name}"', office, run) as cur:
            if deleted:
                cur.execute(
                    f'DELETE FROM "{name}" WHERE office = %s AND "{pk}" = ANY(%s)', (office, list(deleted))
                )
                removed += max(cur.rowcount, 0)
            if listing:
                # A hash or merge anti-join, never a nested loop: a fresh table's statistics make the planner
                # pick one, quadratic in the rows (seconds for 10 000 rows).
                cur.execute("SET LOCAL enable_nestloop = off")
                cur.execute(
                    f'DELETE FROM "{name}" AS t WHERE office = %s AND NOT EXISTS (SELECT 1 FROM (SELECT unnest(pks) '
                    "AS pk FROM odapi_sync_listed WHERE office = %s AND resource = %s AND run = %s) AS l "
                    f'WHERE l.pk = t."{pk}")',
                    (office, office, name, run),
                )
                removed += max(cur.rowcount, 0)
                cur.execute(
                    "DELETE FROM odapi_sync_listed WHERE office = %s AND resource = %s AND run = %s",
                    (office, name, run),
                )
            cur.execute(
                "INSERT INTO odapi_sync_state AS s (office, resource, watermark, synced_at, listed_rows) "
                "VALUES (%s, %s, %s, now(), %s) ON CONFLICT (office, resource) DO UPDATE SET "
                "watermark = EXCLUDED.watermark, synced_at = EXCLUDED.synced_at, listed_rows = "
                + ("EXCLUDED.listed_rows" if listing else "s.listed_rows"),
                (office, name, mark, listed_rows if listing else 0),
            )
        return removed

    # ------------------------------------------------------------------------------------------ reads

    def state(self, office: str, resource: str) -> SyncState | None:
        with self._transaction(f'reading the state of "{resource}"') as cur:
            row = cur.execute(
                "SELECT watermark, synced_at, listed_rows FROM odapi_sync_state "
                "WHERE office = %s AND resource = %s",
                (office, resource),
            ).fetchone()
        if row is None:
            return None
        watermark, synced_at, listed_rows = row
        text = watermark.strftime(WATERMARK_FORMAT) if watermark is not None else None
        return SyncState(text, synced_at.isoformat(timespec="seconds"), int(listed_rows))

    def count(self, resource: str, office: str) -> int:
        with self._transaction(f'counting "{resource}"') as cur:
            if not self._exists(cur, resource):
                return 0
            row = cur.execute(f'SELECT count(*) FROM "{resource}" WHERE office = %s', (office,)).fetchone()
        return int(row[0]) if row else 0
