"""SQLite access for the emulator: prepared SQL per resource, JSON rendered by SQLite itself, writes.

Rows are stored in their wire form (see ``_practice.seed``), so ``json_object`` over the columns in spec order *is*
the answer: no Python object per row, which keeps a 1000-row page at a few milliseconds; a page asked again while
the data is unchanged is not rendered again (``_practice.page_cache``).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from odapi_async.emulator._catalog.routes import (
    ENTRY_COLUMNS,
    SERVER_DATETIME,
    STAMP_COLUMNS,
    Catalog,
    Resource,
    catalog,
)
from odapi_async.emulator._catalog.row_shapes import render
from odapi_async.emulator._practice.page_cache import PageCache
from odapi_async.emulator._practice.schema import zero

#: Suffix of a derived lower-case column whose name clashes (ignoring case) with a real field.
DERIVED_SUFFIX = "__derived"

#: Lower-case helper fields filled from another table: name -> (source column, table, column).
_DERIVED_LOOKUPS: dict[str, tuple[str, str, str]] = {
    "provAbbr": ("ProvNum", "providers", "Abbr"),
    "priProvAbbr": ("PriProv", "providers", "Abbr"),
    "secProvAbbr": ("SecProv", "providers", "Abbr"),
    "clinicAbbr": ("ClinicNum", "clinics", "Abbr"),
    "procCode": ("CodeNum", "procedurecodes", "ProcCode"),
    "descript": ("CodeNum", "procedurecodes", "Descript"),
    "dxName": ("Dx", "definitions", "ItemName"),
}


def quote_ident(name: str) -> str:
    """Quote an SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


class ApiError(Exception):
    """An answer other than success: status code and the plain-text explanation."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class Practice:
    """The emulator's database with the SQL it needs, prepared once per resource."""

    def __init__(self, db: sqlite3.Connection, clock: Callable[[], datetime] = datetime.now) -> None:
        self.db = db
        self.clock = clock
        self.cat: Catalog = catalog()
        self._select: dict[tuple[Any, ...], str] = {}
        self._indexed: set[tuple[str, str]] = set()
        self.colmap: dict[str, dict[str, str]] = {}
        #: list pages already rendered, until the data changes (``_practice.page_cache``)
        self.pages: PageCache = PageCache(db)
        self._ensure_tables()

    # -- schema ---------------------------------------------------------------------------------------------
    def _ensure_tables(self) -> None:
        """Map fields to columns; create (empty) any table the store did not, so every resource answers.

        SQLite column names ignore case, so the derived twin of a pair like ``Confirmed``/``confirmed`` is
        stored under a suffixed name; the actual names are read back from the table.
        """
        existing = {r[0] for r in self.db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        for res in self.cat.resources.values():
            if not res.has_table:
                continue
            if res.segment not in existing:
                cols = []
                taken = {c.lower() for c in res.columns if not res.field_by_name[c].derived}
                for c in res.columns:
                    name = c + DERIVED_SUFFIX if res.field_by_name[c].derived and c.lower() in taken else c
                    cols.append(
                        f"{quote_ident(name)} INTEGER PRIMARY KEY" if c == res.pk else quote_ident(name)
                    )
                self.db.execute(f"CREATE TABLE {quote_ident(res.segment)} ({', '.join(cols)})")
            actual = [r[1] for r in self.db.execute(f"PRAGMA table_info({quote_ident(res.segment)})")]
            exact = set(actual)
            lowered = {a.lower(): a for a in actual}
            mapping: dict[str, str] = {}
            for c in res.columns:
                if c in exact:
                    mapping[c] = c
                elif c + DERIVED_SUFFIX in exact:
                    mapping[c] = c + DERIVED_SUFFIX
                elif c.lower() in lowered and not res.field_by_name[c].derived:
                    mapping[c] = lowered[c.lower()]
            self.colmap[res.segment] = mapping
        self.db.commit()

    def col(self, res: Resource, name: str) -> str:
        """The quoted column holding field ``name``."""
        return quote_ident(self.colmap[res.segment].get(name, name))

    def ensure_index(self, res: Resource, column: str) -> None:
        """Index a filtered column the first time it is used (cheap start, fast repeated filters)."""
        key = (res.segment, column)
        if key in self._indexed or column == res.pk:
            return
        self._indexed.add(key)
        name = f"emu_{res.segment}_{column}".replace('"', "")
        self.db.execute(
            f"CREATE INDEX IF NOT EXISTS {quote_ident(name)} ON {quote_ident(res.segment)} ({self.col(res, column)})"
        )

    # -- time -----------------------------------------------------------------------------------------------
    def now_text(self) -> str:
        return self.clock().strftime("%Y-%m-%d %H:%M:%S")

    # -- reads ----------------------------------------------------------------------------------------------
    def order_by(self, res: Resource) -> str:
        return self._pk_col(res)

    def json_expr(
        self,
        res: Resource,
        cols: Sequence[str] | None,
        with_sdt: bool,
        forms: Mapping[str, str] | None = None,
    ) -> str:
        """``json_object(...)`` over the columns in spec order, ``?`` standing for serverDateTime.

        ``forms`` renders some fields in another JSON form than the stored one (see ``_api.row_shapes``).
        """
        key = (
            res.segment,
            tuple(cols) if cols is not None else None,
            with_sdt,
            tuple(sorted((forms or {}).items())),
        )
        expr = self._select.get(key)
        if expr is None:
            names = list(cols) if cols is not None else [f.name for f in res.fields]
            parts: list[str] = []
            for name in names:
                if name == SERVER_DATETIME:
                    if with_sdt:
                        parts.append(f"'{SERVER_DATETIME}', ?")
                    continue
                f = res.field_by_name.get(name)
                if f is None:
                    continue
                if name not in self.colmap[res.segment]:
                    continue
                col = self.col(res, name)
                if f.type == "list":
                    col = f"CASE WHEN json_valid({col}) THEN json({col}) ELSE {col} END"
                elif forms and name in forms:
                    col = render(col, forms[name])
                parts.append(f"'{name}', {col}")
            expr = self._select[key] = f"json_object({', '.join(parts)})"
        return expr

    def _sdt_params(self, res: Resource, cols: Sequence[str] | None, with_sdt: bool) -> list[Any]:
        names = cols if cols is not None else [f.name for f in res.fields]
        return [self.now_text()] if with_sdt and SERVER_DATETIME in names else []

    def list_json(
        self,
        res: Resource,
        where: Sequence[str],
        params: Sequence[Any],
        *,
        limit: int,
        offset: int,
        with_sdt: bool = True,
        cols: Sequence[str] | None = None,
        order: str | None = None,
        forms: Mapping[str, str] | None = None,
    ) -> bytes:
        expr = self.json_expr(res, cols, with_sdt, forms)
        sql = f"SELECT {expr} FROM {quote_ident(res.segment)}"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += f" ORDER BY {order or self.order_by(res)} LIMIT ? OFFSET ?"
        args = (*self._sdt_params(res, cols, with_sdt), *params, limit, offset)

        def query_page() -> bytes:
            rows = self.db.execute(sql, args).fetchall()
            return ("[" + ",".join(r[0] for r in rows) + "]").encode()

        return self.pages.get((sql, args), query_page)

    def one_json(
        self,
        res: Resource,
        pk: int,
        *,
        with_sdt: bool = True,
        cols: Sequence[str] | None = None,
        forms: Mapping[str, str] | None = None,
    ) -> bytes | None:
        expr = self.json_expr(res, cols, with_sdt, forms)
        sql = f"SELECT {expr} FROM {quote_ident(res.segment)} WHERE {self._pk_col(res)} = ?"
        row = self.db.execute(sql, [*self._sdt_params(res, cols, with_sdt), pk]).fetchone()
        return row[0].encode() if row else None

    def first_json(
        self,
        res: Resource,
        where: Sequence[str],
        params: Sequence[Any],
        *,
        cols: Sequence[str] | None = None,
        forms: Mapping[str, str] | None = None,
    ) -> bytes | None:
        expr = self.json_expr(res, cols, True, forms)
        sql = f"SELECT {expr} FROM {quote_ident(res.segment)}"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += f" ORDER BY {self.order_by(res)} LIMIT 1"
        row = self.db.execute(sql, [*self._sdt_params(res, cols, True), *params]).fetchone()
        return row[0].encode() if row else None

    def _pk_col(self, res: Resource) -> str:
        return self.col(res, res.pk) if res.pk_is_column and res.pk else "rowid"

    def _stored(self, res: Resource) -> list[str]:
        return [c for c in res.columns if c in self.colmap[res.segment]]

    def row(self, res: Resource, pk: int) -> dict[str, Any] | None:
        cols = self._stored(res)
        cur = self.db.execute(
            f"SELECT {', '.join(self.col(res, c) for c in cols)} FROM {quote_ident(res.segment)} "
            f"WHERE {self._pk_col(res)} = ?",
            (pk,),
        )
        r = cur.fetchone()
        return dict(zip(cols, r, strict=False)) if r else None

    def rows(self, res: Resource, where: str = "", params: Iterable[Any] = ()) -> list[dict[str, Any]]:
        """Rows as {field: value}; ``where`` names columns (non-derived field names are their columns)."""
        cols = self._stored(res)
        sql = f"SELECT {', '.join(self.col(res, c) for c in cols)} FROM {quote_ident(res.segment)}"
        if where:
            sql += " WHERE " + where
        sql += f" ORDER BY {self.order_by(res)}"
        return [dict(zip(cols, r, strict=False)) for r in self.db.execute(sql, list(params))]

    def exists(self, res: Resource, pk: int) -> bool:
        sql = f"SELECT 1 FROM {quote_ident(res.segment)} WHERE {self._pk_col(res)} = ?"
        return self.db.execute(sql, (pk,)).fetchone() is not None

    # -- writes ---------------------------------------------------------------------------------------------
    def _derive(self, res: Resource, values: dict[str, Any]) -> None:
        """Refresh lower-case helper fields whose source column is being written."""
        for f in res.fields:
            if not f.derived or f.name == SERVER_DATETIME:
                continue
            lookup = _DERIVED_LOOKUPS.get(f.name)
            if lookup is None:
                source = f.name[0].upper() + f.name[1:]
                src = res.field_by_name.get(source)
                if src is None or src.type != "int":
                    continue
                lookup = (source, "definitions", "ItemName")
            source, table, column = lookup
            if source not in values or source not in res.columns:
                continue
            target = self.cat.resources.get(table)
            if target is None or not target.pk_is_column or target.pk is None:
                continue
            try:
                key = int(values[source])
            except (TypeError, ValueError):
                continue
            found = self.db.execute(
                f"SELECT {self.col(target, column)} FROM {quote_ident(table)} WHERE {self._pk_col(target)} = ?",
                (key,),
            ).fetchone()
            values[f.name] = found[0] if found else ""

    def insert(self, res: Resource, values: dict[str, Any]) -> int:
        """Insert a row: unset columns get their zero value, stamps get now. Returns the new key."""
        now = self.now_text()
        row: dict[str, Any] = {}
        for f in res.fields:
            if f.name == SERVER_DATETIME or (f.name == res.pk and res.pk_is_column):
                continue
            row[f.name] = zero(f)
        for c in (*STAMP_COLUMNS, *ENTRY_COLUMNS):
            if c in row:
                f = res.field_by_name[c]
                row[c] = now[:10] if f.type == "date" else now
        row.update(values)
        self._derive(res, row)
        if res.pk_is_column and res.pk and res.pk in values:
            row[res.pk] = values[res.pk]
        stored = self.colmap[res.segment]
        cols = [c for c in row if c in stored]
        cur = self.db.execute(
            f"INSERT INTO {quote_ident(res.segment)} ({', '.join(self.col(res, c) for c in cols)}) "
            f"VALUES ({', '.join('?' for _ in cols)})",
            [row[c] for c in cols],
        )
        self.db.commit()
        return int(cur.lastrowid or 0)

    def update(self, res: Resource, pk: int, values: dict[str, Any]) -> None:
        """Change the given columns of one row and stamp it."""
        values = dict(values)
        self._derive(res, values)
        now = self.now_text()
        for c in STAMP_COLUMNS:
            if c in res.columns:
                values[c] = now
        stored = self.colmap[res.segment]
        cols = [c for c in values if c in stored]
        if not cols:
            return
        self.db.execute(
            f"UPDATE {quote_ident(res.segment)} SET {', '.join(self.col(res, c) + ' = ?' for c in cols)} "
            f"WHERE {self._pk_col(res)} = ?",
            [*(values[c] for c in cols), pk],
        )
        self.db.commit()

    def delete(self, res: Resource, pk: int) -> None:
        self.db.execute(f"DELETE FROM {quote_ident(res.segment)} WHERE {self._pk_col(res)} = ?", (pk,))
        self.db.commit()
