"""``odapi get RESOURCE [ID]``: stream one row or a list to stdout as NDJSON, CSV or a table."""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import difflib
import inspect
import shutil
import sys
import typing
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import anyio
import click
import msgspec

from odapi_async import OpenDental, resources
from odapi_async._codec import Model
from odapi_async.cli import _table
from odapi_async.cli._common import Connection, connection_options, parse_params, usage_error
from odapi_async.resources._generated import RESOURCES

FORMATS = ("ndjson", "csv", "table")


def coerce(method: Callable[..., Any], raw: dict[str, str]) -> dict[str, Any]:
    """Turn ``-p K=V`` text into the types the operation's parameters declare (its TypedDict)."""
    hints: dict[str, Any] = {}
    annotation = inspect.signature(method).parameters.get("params")
    if annotation is not None:
        unpacked = typing.get_args(annotation.annotation)  # Unpack[TD] -> (TD,)
        if unpacked:
            hints = typing.get_type_hints(unpacked[0])
    return {name: _coerce_one(name, value, hints.get(name)) for name, value in raw.items()}


def _coerce_one(name: str, value: str, hint: Any) -> Any:
    while (
        typing.get_origin(hint) is not None
        and typing.get_origin(hint) is not list
        and len(typing.get_args(hint)) == 1
    ):  # Required[X], NotRequired[X]
        hint = typing.get_args(hint)[0]
    try:
        if hint is int:
            return int(value)
        if hint is float:
            return float(value)
        if hint is bool:
            if value.lower() not in ("true", "false"):
                raise ValueError("expected true or false")
            return value.lower() == "true"
        if typing.get_origin(hint) is list:
            item = typing.get_args(hint)[0] if typing.get_args(hint) else str
            return [item(v) if item in (int, float) else v for v in value.split(",") if v]
    except ValueError as exc:
        raise usage_error(f"-p {name}={value}: {exc}") from None
    return value


def _cell(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.isoformat(" ")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, (list, dict)):
        return msgspec.json.encode(value).decode()
    return value


def _as_dict(row: Any) -> dict[str, Any]:
    if isinstance(row, msgspec.Struct):
        return {f: _cell(getattr(row, f)) for f in row.__struct_fields__}
    if isinstance(row, dict):
        return {k: _cell(v) for k, v in row.items()}
    return {"value": _cell(row)}


async def _rows(
    od: OpenDental, resource: str, key: str | None, params: dict[str, str], limit: int | None
) -> AsyncIterator[Any]:
    res = getattr(od, resource)
    if key is not None:
        method = getattr(res, "get", None)
        if method is None:
            raise usage_error(f"{resource} has no GET by key")
        path = next(iter(inspect.signature(method).parameters))
        yield await method(**{path: _coerce_one(path, key, int)}, **coerce(method, params))
        return
    method = getattr(res, "list", None)
    if method is None:
        raise usage_error(f"{resource} has no list operation; give an ID")
    paginator = method(**coerce(method, params))
    count = 0
    async with contextlib.aclosing(paginator.__aiter__()) as rows:
        async for row in rows:
            if limit is not None and count >= limit:
                return
            count += 1
            yield row


def row_model(resource: str, key: str | None) -> type[Model] | None:
    """The model of the rows ``odapi get RESOURCE [ID]`` prints (None: rows without a fixed set of fields)."""
    method = getattr(getattr(resources, RESOURCES[resource]), "get" if key is not None else "list", None)
    if method is None:
        return None
    returned = typing.get_type_hints(method).get("return")
    model = typing.get_args(returned)[0] if typing.get_args(returned) else returned  # Paginator[M] -> M
    if isinstance(model, type) and issubclass(model, Model) and model.__struct_fields__:
        return model
    return None


def check_fields(resource: str, model: type[Model] | None, wanted: Sequence[str]) -> None:
    """``--fields`` names the model's fields, as ``-p`` filters must name parameters: a typo is a usage error."""
    if model is None:
        return
    known = model.__struct_fields__
    for name in wanted:
        if name in known:
            continue
        by_case = [f for f in known if f.lower() == name.lower()]
        close = by_case or difflib.get_close_matches(name, known, n=1, cutoff=0.6)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise usage_error(
            f"--fields: {resource} rows have no field {name!r}{hint} (fields: {', '.join(known)})"
        )


def _print_table(records: list[dict[str, Any]], first: str | None, fields: Sequence[str]) -> None:
    if not records:
        sys.stderr.write("no rows\n")
        return
    terminal = sys.stdout.isatty()
    width = shutil.get_terminal_size().columns if terminal else None
    layout = _table.choose(records, first=first, width=width, wanted=fields)
    for line in _table.render(records, layout.columns, cut=terminal):
        sys.stdout.write(line + "\n")
    note = layout.note()
    if note:
        sys.stderr.write(note + "\n")


async def _emit(
    connection: Connection,
    resource: str,
    key: str | None,
    params: dict[str, str],
    fmt: str,
    limit: int | None,
    fields: Sequence[str],
    first: str | None,
) -> None:
    out = sys.stdout
    table: list[dict[str, Any]] = []
    writer: Any = None
    async with connection.session() as od:
        async for row in _rows(od, resource, key, params, limit):
            record = _as_dict(row)
            if fields:
                record = {f: record.get(f) for f in fields}
            if fmt == "ndjson":
                out.write(msgspec.json.encode(record).decode() + "\n")
            elif fmt == "csv":
                if writer is None:
                    writer = csv.DictWriter(out, fieldnames=list(record), extrasaction="ignore")
                    writer.writeheader()
                writer.writerow(record)
            else:
                table.append(record)  # the columns depend on every row: printed at the end
            if fmt != "table":
                out.flush()  # a pipe's reader sees each row as it comes
    if fmt == "table":
        _print_table(table, first, fields)


@click.command()
@click.argument("resource")
@click.argument("key", metavar="[ID]", required=False)
@click.option("-p", "--param", "params", multiple=True, metavar="NAME=VALUE", help="A filter (repeatable).")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    default="ndjson",
    show_default=True,
    help="table: the key and the filled columns that fit the terminal (plain aligned text when piped).",
)
@click.option("--limit", type=click.IntRange(min=1), help="Stop after this many rows.")
@click.option("--fields", metavar="A,B,...", help="Only these fields of the model, in this order.")
@connection_options
def get(
    resource: str,
    key: str | None,
    params: tuple[str, ...],
    fmt: str,
    limit: int | None,
    fields: str | None,
    connection: Connection,
) -> int:
    """Print one row (with ID) or every row of RESOURCE's list (e.g. patients, appointments)."""
    if resource not in RESOURCES:
        raise usage_error(
            f"unknown resource {resource!r}; resources are the URL segments: patients, appointments, ..."
        )
    wanted = [f.strip() for f in (fields or "").split(",") if f.strip()]
    model = row_model(resource, key)
    check_fields(resource, model, wanted)
    first = model.__od_primary_key__ if model is not None else None
    anyio.run(_emit, connection, resource, key, parse_params(params), fmt, limit, wanted, first)
    return 0
