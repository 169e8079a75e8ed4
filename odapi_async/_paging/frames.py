"""DataFrames from a list call: ``await od.appointments.list(...).to_polars()`` / ``.to_pandas()``.

Columns are typed from the model, not guessed from the values: ``int`` → Int64, ``float`` → Float64, ``bool`` →
Boolean, dates → Date, datetimes → Datetime (the API's ``0001-01-01`` already decoded to ``None``, so null),
text → String, and the fields the spec documents as enums (``AptStatus``…) → categorical. Categorical rather
than a fixed enum: a value a newer server adds must not fail the build.

The frame is built column by column from the decoded rows (one attribute read per cell; no dict per row), so
the wire rules of the models (string booleans, zero dates, the lenient pass) hold in the frame too.
Rows that are not models (``queries.ShortQuery``'s dict rows) are handed to the library as they are.
"""

from __future__ import annotations

import datetime as dt
import functools
import operator
from decimal import Decimal
from typing import Any, Union, get_args, get_origin, get_type_hints

import msgspec

from odapi_async._codec import Model
from odapi_async._util.optional import require as require_module

__all__ = ["column_kinds", "require", "rows_to_pandas", "rows_to_polars"]

_GENERATED = "odapi_async.resources._generated."


def require(name: str) -> Any:
    """The DataFrame library ``name``, or :class:`~odapi_async.MissingExtra` naming the extra that installs it."""
    return require_module(name, name, f"to_{name}()")


@functools.cache
def _enum_fields(resource: str) -> frozenset[str]:
    """The fields the spec documents as enums for ``resource`` (read once, only when a frame is built)."""
    from odapi_async._spec import load_spec

    for res in load_spec()["resources"]:
        if res.get("url_segment") == resource:
            return frozenset(f["name"] for f in res.get("fields", ()) if f.get("type") == "enum")
    return frozenset()


def _scalar(hint: Any) -> Any:
    """``Optional[X]`` → ``X``; anything else unchanged."""
    if get_origin(hint) is Union or type(hint).__name__ == "UnionType":
        args = [a for a in get_args(hint) if a is not type(None)]
        return args[0] if len(args) == 1 else hint
    return hint


@functools.cache
def column_kinds(model: type[Model]) -> tuple[tuple[str, str], ...]:
    """(field, kind) per column of ``model``: kind is int, float, decimal, bool, str, enum, date, datetime,
    time or other."""
    module = model.__module__
    enums = _enum_fields(module[len(_GENERATED) :]) if module.startswith(_GENERATED) else frozenset()
    hints = get_type_hints(model)
    kinds = []
    for name in msgspec.structs.fields(model):
        hint = _scalar(hints[name.name])
        if name.name in enums and hint is str:
            kind = "enum"
        else:
            kind = {
                bool: "bool",
                int: "int",
                float: "float",
                Decimal: "decimal",
                str: "str",
                dt.datetime: "datetime",
                dt.date: "date",
                dt.time: "time",
            }.get(hint, "other")
        kinds.append((name.name, kind))
    return tuple(kinds)


def _columns(rows: list[Any], names: list[str]) -> list[tuple[Any, ...]]:
    """Column-major values: one tuple per row from a C-level attrgetter, transposed by zip."""
    if len(names) == 1:
        return [tuple(getattr(r, names[0]) for r in rows)]
    return list(zip(*map(operator.attrgetter(*names), rows), strict=True)) or [() for _ in names]


def _model_of(rows: list[Any], model: Any) -> type[Model] | None:
    if rows and isinstance(rows[0], Model):
        return type(rows[0])
    if isinstance(model, type) and issubclass(model, Model):
        return model
    return None


def rows_to_polars(rows: list[Any], model: Any = None) -> Any:
    """A ``polars.DataFrame`` of ``rows`` (models → typed columns; anything else as polars reads it)."""
    pl = require("polars")
    found = _model_of(rows, model)
    if found is None:
        return pl.DataFrame(rows)
    dtypes = {
        "int": pl.Int64,
        "float": pl.Float64,
        "decimal": pl.Float64,
        "bool": pl.Boolean,
        "str": pl.String,
        "enum": pl.Categorical,
        "date": pl.Date,
        "datetime": pl.Datetime("us"),
        "time": pl.Time,
    }
    kinds = column_kinds(found)
    names = [name for name, _ in kinds]
    columns = _columns(rows, names)
    series = [
        pl.Series(name, values, dtype=dtypes.get(kind), strict=False)
        for (name, kind), values in zip(kinds, columns, strict=True)
    ]
    return pl.DataFrame(series)


def rows_to_pandas(rows: list[Any], model: Any = None) -> Any:
    """A ``pandas.DataFrame`` of ``rows``; dates are ``datetime64[s]`` (pandas has no date-only dtype)."""
    pd = require("pandas")
    found = _model_of(rows, model)
    if found is None:
        return pd.DataFrame(rows)
    dtypes = {
        "int": "int64",
        "float": "float64",
        "bool": "bool",
        "enum": "category",
        # Seconds and microseconds, not pandas' default nanoseconds: those stop at 2262, and the API has
        # dates such as 9999-12-31 ("no end").
        "date": "datetime64[s]",
        "datetime": "datetime64[us]",
    }
    kinds = column_kinds(found)
    names = [name for name, _ in kinds]
    columns = _columns(rows, names)
    data = {
        name: pd.Series(values, dtype=dtypes.get(kind), name=name)
        for (name, kind), values in zip(kinds, columns, strict=True)
    }
    return pd.DataFrame(data, columns=names)
