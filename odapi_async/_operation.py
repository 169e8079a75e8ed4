"""Operations as data, and the checks a call's arguments pass before any request is made.

The generator turns every operation of the spec into an :class:`Operation`; the hand-written base
(:mod:`odapi_async._resource`) reads it. Checking names and types here, against the spec, turns a typo into a
readable error on the caller's line instead of a 400 from a throttled server five seconds later.
"""

from __future__ import annotations

import datetime as dt
import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from urllib.parse import quote

from odapi_async._codec import query_value, shown, unsendable, wire_value
from odapi_async._exceptions import InvalidParameter

#: Paging parameters every paginated GET accepts without the spec listing them.
PAGING_PARAMS = ("Offset", "Limit")

_DATE_TEXT = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DATETIME_TEXT = re.compile(r"^\d{4}-\d{2}-\d{2}( \d{2}:\d{2}:\d{2})?$")


@dataclass(frozen=True)
class Param:
    """One documented parameter: its wire name and spec type."""

    name: str
    kind: str  # int, float, str, bool, date, datetime, enum, list
    required: bool = False
    enum: tuple[str, ...] = ()
    items: str = ""


@dataclass(frozen=True)
class Operation:
    """One documented operation of a resource."""

    resource: str  # URL segment, e.g. "appointments"
    id: str  # "get", "list", "create", ... or the docs' action name
    method: str
    path: str  # with {Param} placeholders
    path_params: tuple[Param, ...] = ()
    query: tuple[Param, ...] = ()
    body: tuple[Param, ...] = ()
    idempotent: bool = True
    paginated: bool = False
    returns: str = "object"  # object, list, none, string
    model: Any = None  # a Model subclass, DynamicRow, or None for untyped answers
    deprecated: bool = False
    derived: frozenset[str] = field(default_factory=frozenset)
    permission: str = ""  # the API permission group the docs require ("Read All", "Comm", "Appointments"…)

    @property
    def name(self) -> str:
        return f"{self.resource}.{self.id}"


def _type_ok(value: Any, param: Param) -> bool:
    kind = param.kind
    if kind == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "float":
        return isinstance(value, (int, float, Decimal)) and not isinstance(value, bool)
    if kind == "bool":
        return isinstance(value, bool)
    if kind == "date":
        return (isinstance(value, dt.date) and not isinstance(value, dt.datetime)) or (
            isinstance(value, str) and bool(_DATE_TEXT.match(value))
        )
    if kind == "datetime":
        if isinstance(value, dt.datetime) and value.tzinfo is not None:
            return (
                False  # the API speaks the office's local wall-clock time: converting silently could shift it
            )
        return isinstance(value, dt.date) or (isinstance(value, str) and bool(_DATETIME_TEXT.match(value)))
    if kind == "list":
        item = Param(param.name, param.items) if param.items in ("int", "str", "float") else None
        return isinstance(value, (list, tuple)) and (item is None or all(_type_ok(v, item) for v in value))
    if kind == "enum":
        return isinstance(value, (str, enum.Enum))
    return isinstance(value, str)  # str


def _expected(param: Param) -> str:
    return {
        "date": "a date or 'yyyy-MM-dd'",
        "datetime": "a naive datetime (office local time) or 'yyyy-MM-dd HH:mm:ss'",
        "list": f"a list of {param.items or 'values'}",
        "enum": "one of " + ", ".join(param.enum) if param.enum else "text",
    }.get(param.kind, param.kind)


def _unknown_enum(value: Any, param: Param) -> bool:
    if param.kind != "enum" or not param.enum or not isinstance(value, str):
        return False
    return value.lower() not in {e.lower() for e in param.enum}


def check_arguments(op: Operation, where: str, values: Mapping[str, Any], params: tuple[Param, ...]) -> None:
    """Raise :class:`InvalidParameter` for an unknown name, a wrong type, a number the API cannot hold or a
    missing required parameter. The one check of an operation's arguments: ``build_*`` then encode unchecked.
    """
    known = {p.name: p for p in params}
    valid = tuple(sorted(known))
    for name, value in values.items():
        param = known.get(name)
        if param is None:
            listing = ", ".join(valid) if valid else "none"
            raise InvalidParameter(
                f"{op.name}() got an unknown {where} parameter {name!r}; valid {where} parameters: {listing}",
                operation=op.name,
                parameter=name,
                valid=valid,
            )
        if value is None and param.kind not in ("date", "datetime"):
            continue  # None means "not given" except for dates, where it is the API's "no date"
        if value is not None and not _type_ok(value, param):
            raise InvalidParameter(
                f"{op.name}() parameter {name!r} must be {_expected(param)}, got {type(value).__name__} "
                f"{shown(value)}",
                operation=op.name,
                parameter=name,
                valid=valid,
            )
        why = unsendable(value)
        if why:
            raise InvalidParameter(
                f"{op.name}() parameter {name!r} must be {why}, got {shown(value)}",
                operation=op.name,
                parameter=name,
                valid=valid,
            )
        if _unknown_enum(value, param):
            raise InvalidParameter(
                f"{op.name}() parameter {name!r} must be one of {', '.join(param.enum)}; got {shown(value)}",
                operation=op.name,
                parameter=name,
                valid=valid,
            )
    missing = [p.name for p in params if p.required and values.get(p.name) is None]
    if missing:
        raise InvalidParameter(
            f"{op.name}() is missing required {where} parameter(s): {', '.join(missing)}",
            operation=op.name,
            parameter=missing[0],
            valid=valid,
        )


def build_path(op: Operation, path_values: Mapping[str, Any]) -> str:
    """Fill the path placeholders (each value checked and percent-encoded)."""
    check_arguments(op, "path", path_values, op.path_params)
    path = op.path
    for param in op.path_params:
        path = path.replace(
            "{" + param.name + "}",
            quote(str(wire_value(path_values[param.name], param.kind, check=False)), safe=""),
        )
    return path


def build_query(op: Operation, values: Mapping[str, Any], *, paging: bool = False) -> dict[str, str]:
    """Check query parameters against the spec and turn them into wire text."""
    params = op.query + tuple(Param(n, "int") for n in PAGING_PARAMS) if paging else op.query
    check_arguments(op, "query", values, params)
    kinds = {p.name: p.kind for p in params}
    return {k: query_value(v, kinds[k], check=False) for k, v in values.items() if v is not None}


def build_body(op: Operation, values: Mapping[str, Any]) -> dict[str, Any]:
    """Check body fields against the spec and turn them into wire values.

    Only the fields given are sent (a PUT leaves the others unchanged on the server). Derived lower-case
    helper fields of the resource (``provAbbr``…) are read-only: they are dropped, never sent.
    """
    given = {k: v for k, v in values.items() if k not in op.derived}
    check_arguments(op, "body", given, op.body)
    kinds = {p.name: p.kind for p in op.body}
    return {
        k: wire_value(v, kinds[k], check=False)
        for k, v in given.items()
        if v is not None or kinds[k] in ("date", "datetime")
    }
