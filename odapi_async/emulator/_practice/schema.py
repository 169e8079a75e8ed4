"""The emulator's SQLite schema, derived from the spec: one table per resource that has fields.

Values are kept in their JSON wire form (string booleans, ``yyyy-MM-dd`` dates, enum names, numbers the API
sends as strings kept as text) so that the server can answer a row without converting it.

SQLite compares column names without regard to case, and the API has pairs such as ``Confirmed`` (a DefNum)
and ``confirmed`` (its text). The derived lower-case twin of such a pair is stored under a mangled name
(``confirmed__derived``); :func:`column_map` maps every stored field to its column.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from odapi_async._spec import load_spec

if TYPE_CHECKING:
    from odapi_async.emulator._catalog.routes import Field

ZERO_DATE = "0001-01-01"
ZERO_DATETIME = "0001-01-01 00:00:00"
ZERO_TIME = "00:00:00"
DERIVED_SUFFIX = "__derived"
# Computed by the server when it answers, never stored.
SERVER_COMPUTED = frozenset({"serverDateTime"})
INDEXED_FIELDS = ("PatNum", "DateTStamp", "SecDateTEdit", "AptDateTime", "ProcDate")


@dataclass(frozen=True)
class TableSpec:
    """How one spec resource is stored."""

    resource: str
    table: str
    primary_key: str | None  # a stored field name, or None when the table relies on the rowid
    fields: tuple[Mapping[str, Any], ...]  # stored fields, in spec order
    columns: Mapping[str, str]  # field name -> column name


def table_name(resource: Mapping[str, Any]) -> str:
    """Return the SQLite table name of a spec resource (its URL segment, lower-cased)."""
    return str(resource["url_segment"]).lower()


def zero_value(field: Mapping[str, Any]) -> object:
    """Return the stored (wire) zero of a spec field, used for defaults.

    Numbers flagged ``numeric_string`` are text (``"0"``, ``"0.00"``); list and object fields are JSON text.
    """
    kind = field.get("type")
    numeric_string = bool(field.get("numeric_string"))
    if kind == "int":
        return "0" if numeric_string else 0
    if kind == "float":
        return "0.00" if numeric_string else 0.0
    if kind == "bool":
        return "false"
    if kind == "date":
        return ZERO_DATE
    if kind == "datetime":
        return ZERO_DATETIME
    if kind == "time":
        return ZERO_TIME
    if kind == "enum":
        names = field.get("enum") or []
        return str(names[0]) if names else ""
    if kind == "list":
        return "[]"
    if kind == "object":
        return "{}"
    return ""


def wire_value(field: Mapping[str, Any], value: object) -> object:
    """Convert a JSON/Python value to the form stored for ``field`` (used by the server for POST/PUT)."""
    if value is None:
        return zero_value(field)
    kind = field.get("type")
    numeric_string = bool(field.get("numeric_string"))
    if kind == "bool":
        if isinstance(value, str):
            return "true" if value.strip().lower() == "true" else "false"
        return "true" if value else "false"
    if kind == "int":
        number = int(float(value)) if isinstance(value, str) else int(value)  # type: ignore[call-overload]
        return str(number) if numeric_string else number
    if kind == "float":
        real = float(value)  # type: ignore[arg-type]
        return f"{real:.2f}" if numeric_string else real
    if kind == "date":
        if isinstance(value, dt.datetime):
            return value.strftime("%Y-%m-%d")
        if isinstance(value, dt.date):
            return value.isoformat()
        return str(value)[:10]
    if kind == "datetime":
        if isinstance(value, dt.datetime):
            return value.strftime("%Y-%m-%d %H:%M:%S")
        if isinstance(value, dt.date):
            return value.isoformat() + " 00:00:00"
        text = str(value).replace("T", " ")
        return text + " 00:00:00" if len(text) == 10 else text
    if kind == "time":
        return value.strftime("%H:%M:%S") if isinstance(value, dt.time) else str(value)
    if kind in ("list", "object"):
        return value if isinstance(value, str) else json.dumps(value)
    return str(value)


def sql_type(field: Mapping[str, Any]) -> str:
    """Return the SQLite type of a stored field (numbers sent as strings are text)."""
    if field.get("numeric_string"):
        return "TEXT"
    if field.get("type") == "int":
        return "INTEGER"
    if field.get("type") == "float":
        return "REAL"
    return "TEXT"


def _columns(fields: list[Mapping[str, Any]]) -> dict[str, str]:
    # Non-derived fields keep their names; a derived field whose name clashes (ignoring case) is mangled.
    taken = {str(f["name"]).lower() for f in fields if not f.get("derived")}
    columns: dict[str, str] = {}
    used: set[str] = set()
    for field in fields:
        name = str(field["name"])
        column = name
        if field.get("derived") and name.lower() in taken:
            column = name + DERIVED_SUFFIX
        while column.lower() in used:  # two non-derived fields differing only by case (none today)
            column += "_"
        used.add(column.lower())
        columns[name] = column
    return columns


@functools.cache
def table_specs() -> Mapping[str, TableSpec]:
    """Return the stored tables keyed by resource name, in spec order."""
    specs: dict[str, TableSpec] = {}
    for resource in load_spec()["resources"]:
        fields = [f for f in resource.get("fields") or [] if f["name"] not in SERVER_COMPUTED]
        if not fields:
            continue
        names = {f["name"] for f in fields}
        pk = resource.get("primary_key")
        specs[resource["name"]] = TableSpec(
            resource=resource["name"],
            table=table_name(resource),
            primary_key=pk if pk in names else None,
            fields=tuple(fields),
            columns=_columns(fields),
        )
    return specs


@functools.cache
def _by_any_name() -> Mapping[str, TableSpec]:
    index: dict[str, TableSpec] = {}
    for spec in table_specs().values():
        index[spec.resource.lower()] = spec
        index[spec.table] = spec
    return index


def lookup(resource_name: str) -> TableSpec:
    """Find a stored table by resource name or URL segment (any case); KeyError if it has no table."""
    return _by_any_name()[resource_name.lower()]


def column_map(resource_name: str) -> dict[str, str]:
    """Return {field name: column name} for a resource (``serverDateTime`` is not stored)."""
    return dict(lookup(resource_name).columns)


def _literal(value: object) -> str:
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    return repr(value)


def create_schema(conn: sqlite3.Connection) -> None:
    """Create every table (no indexes: they are built after the bulk load)."""
    for spec in table_specs().values():
        parts = []
        for field in spec.fields:
            column = spec.columns[field["name"]]
            if field["name"] == spec.primary_key:
                parts.append(f'"{column}" INTEGER PRIMARY KEY')
            else:
                parts.append(f'"{column}" {sql_type(field)} DEFAULT {_literal(zero_value(field))}')
        conn.execute(f'CREATE TABLE "{spec.table}" ({", ".join(parts)})')


def create_indexes(conn: sqlite3.Connection) -> None:
    """Index the columns the server filters and sorts on most."""
    for spec in table_specs().values():
        for name in INDEXED_FIELDS:
            if name in spec.columns and name != spec.primary_key:
                column = spec.columns[name]
                conn.execute(f'CREATE INDEX "ix_{spec.table}_{column}" ON "{spec.table}" ("{column}")')


def zero(f: Field) -> Any:
    """The value an unset column gets on insert (the store's zero for that kind of field)."""
    return zero_value({"type": f.type, "numeric_string": f.numeric_string, "enum": f.enum})
