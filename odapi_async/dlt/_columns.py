"""How a resource's model becomes a dlt table: its columns' hints and each row as a dict.

The columns are the sync store's (``TableLayout``): ``office`` first, then one per model field, the
lower-case helper of a pair such as ``Confirmed``/``confirmed`` named ``confirmed__derived``, no
``serverDateTime`` (the server's "now", not data). Values stay Python's (dates, naive datetimes in the
office's clock, booleans, lists), so each destination stores them in its own types; the hints say which.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import msgspec

from odapi_async.sync import SyncSpec, TableLayout
from odapi_async.sync._store import _unwrap

#: The column that marks a row as a deletion (dlt's ``hard_delete`` hint): ``True`` removes the row with that key.
DELETED_COLUMN = "_odapi_deleted"

#: A deletion's sort value in its resource's filter column: later than any version of the row, so that when a
#: load holds both the row (listed) and its deletion (from the log, read after the listing), the deletion wins
#: dlt's deduplication by primary key.
DELETION_STAMP = dt.datetime(9999, 12, 31, 23, 59, 59)


def data_type(hint: Any) -> dict[str, Any]:
    """The dlt column hints for a model field's type."""
    hint = _unwrap(hint)
    if hint is bool:  # before int: bool is an int
        return {"data_type": "bool"}
    if hint is int:
        return {"data_type": "bigint"}
    if hint is float:
        return {"data_type": "double"}
    if hint is str:
        return {"data_type": "text"}
    if hint is dt.datetime:
        # The API's datetimes are the office's wall clock, without a zone: stored as such, not as UTC.
        return {"data_type": "timestamp", "timezone": False}
    if hint is dt.date:
        return {"data_type": "date"}
    return {"data_type": "json"}  # lists and objects: one JSON value, not a nested table


class DltTable:
    """One resource's table as dlt sees it: name, key, column hints, and rows as dicts."""

    def __init__(self, spec: SyncSpec, model: type[msgspec.Struct], *, deletions: bool) -> None:
        self.spec = spec
        self.layout = TableLayout(spec, model)
        self.name = spec.resource
        hints = {f.name: f.type for f in msgspec.structs.fields(model)}
        self.columns: dict[str, dict[str, Any]] = {"office": {"data_type": "text", "nullable": False}}
        for field, column in zip(self.layout.field_names, self.layout.columns, strict=True):
            self.columns[column] = {**data_type(hints[field]), "nullable": column != self.layout.pk_column}
        self.primary_key = ("office", self.layout.pk_column)
        self.cursor_column: str | None = None
        if spec.since_param is not None:
            self.cursor_column = self.layout.columns[self.layout.field_names.index(spec.since_param)]
            # Of two versions of a row in one load (a row listed twice while rows shift under the offset), the
            # later wins; a deletion (DELETION_STAMP) wins over both.
            self.columns[self.cursor_column]["dedup_sort"] = "desc"
        self.deletions = deletions
        if deletions:
            self.columns[DELETED_COLUMN] = {"data_type": "bool", "nullable": True, "hard_delete": True}
        all_fields = [f.name for f in msgspec.structs.fields(model)]
        self._keep = [(all_fields.index(name), column) for name, column in self._named()]

    def _named(self) -> list[tuple[str, str]]:
        return list(zip(self.layout.field_names, self.layout.columns, strict=True))

    def row(self, office: str, item: Any) -> dict[str, Any]:
        values = msgspec.structs.astuple(item)
        out: dict[str, Any] = {"office": office}
        for index, column in self._keep:
            out[column] = values[index]
        return out

    def deletion(self, office: str, key: int) -> dict[str, Any]:
        """A row that removes ``key`` of ``office`` (the other columns stay empty: dlt does not store it)."""
        out: dict[str, Any] = {"office": office, self.layout.pk_column: key, DELETED_COLUMN: True}
        if self.cursor_column is not None:
            out[self.cursor_column] = DELETION_STAMP
        return out
