"""The spec compiled into lookup tables: resources, operations and the route matcher.

Everything here is computed once per process (the spec is read-only) so that a request costs a couple of dict
lookups before it reaches SQLite.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

from odapi_async._spec import load_spec

#: Paging parameters, accepted on every operation.
PAGING_PARAMS = ("Offset", "Limit")
#: Output-format parameters the real server accepts everywhere; the emulator accepts and ignores them.
FORMAT_PARAMS = ("DateFormatString", "DateTimeFormatString")
#: Columns that record the last change of a row, set to "now" on every write.
STAMP_COLUMNS = ("DateTStamp", "SecDateTEdit")
#: Columns that record creation, set to "now" on insert only.
ENTRY_COLUMNS = ("SecDateEntry", "SecDateTEntry", "DateTEntry", "DateEntry", "DateTimeEntry")
SERVER_DATETIME = "serverDateTime"
#: The methods the API documents, in the order an ``Allow`` header lists them.
API_METHODS = ("GET", "POST", "PUT", "DELETE")
#: Parameter types the spec got wrong, per (resource, operation, parameter): the docs call these amounts of
#: money ("insUsed of $300", example 300.75) where the spec, from the parameter table, says int.
PARAM_TYPE_FIXES: dict[tuple[str, str, str], str] = {
    ("ClaimProcs", "PostInsAdjust", "insUsed"): "float",
    ("ClaimProcs", "PostInsAdjust", "deductibleUsed"): "float",
}


@dataclass(frozen=True)
class Field:
    """One field of a resource (or one parameter of an operation)."""

    name: str
    type: str
    enum: tuple[str, ...] | None = None
    numeric_string: bool = False
    derived: bool = False
    required: bool = False
    items_type: str | None = None


@dataclass
class Resource:
    """A spec resource and, when it has fields, the SQLite table that stores it."""

    name: str
    segment: str
    pk: str | None
    fields: tuple[Field, ...]
    field_by_name: dict[str, Field]
    columns: tuple[str, ...]
    note: str = ""
    has_server_dt: bool = False
    has_table: bool = False
    pk_is_column: bool = False
    stamp_column: str | None = None
    operations: list[Operation] = field(default_factory=list)

    def op(self, op_id: str) -> Operation | None:
        for op in self.operations:
            if op.id == op_id:
                return op
        return None


@dataclass
class Operation:
    """One documented method: what it accepts and what it answers."""

    resource: Resource
    id: str
    action: str | None
    method: str
    path: str
    segments: tuple[str | None, ...]  # None marks the path parameter
    path_param: Field | None
    query_params: dict[str, Field]  # keyed by lower-case name
    body_params: dict[str, Field]  # keyed by exact name
    returns: str
    paginated: bool
    response_model: str | None
    response_fields: tuple[Field, ...]
    deprecated: bool
    success_status: int
    idempotent: bool
    permission: str = "Read All"  # the API permission group the docs require (spec: operations[].permission)

    @property
    def required_query(self) -> list[Field]:
        return [p for p in self.query_params.values() if p.required]

    @property
    def required_body(self) -> list[Field]:
        return [p for p in self.body_params.values() if p.required]


def _field(raw: dict[str, Any]) -> Field:
    enum = raw.get("enum")
    return Field(
        name=raw["name"],
        type=raw["type"],
        enum=tuple(enum) if enum else None,
        numeric_string=bool(raw.get("numeric_string")),
        derived=bool(raw.get("derived")),
        required=bool(raw.get("required")),
        items_type=raw.get("items_type"),
    )


def _segments(path: str) -> tuple[str | None, ...]:
    parts = [p for p in path.strip("/").split("/") if p]
    return tuple(None if p.startswith("{") else p.lower() for p in parts)


@dataclass
class Catalog:
    """All resources and a route table keyed by (method, number of path segments)."""

    resources: dict[str, Resource]  # by url segment
    operations: list[Operation]
    routes: dict[tuple[str, int], list[Operation]]
    #: ``routes`` narrowed by the first segment: (method, n) -> {first literal: the operations that can match
    #: a path starting with it}, in ``routes`` order (first match wins, so the answer is the same, found without
    #: trying the hundred other routes of that length); paths whose first segment is no literal use ``_by_param``
    _by_first: dict[tuple[str, int], dict[str, list[Operation]]] = field(init=False, repr=False)
    _by_param: dict[tuple[str, int], list[Operation]] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._by_first, self._by_param = {}, {}
        for key, ops in self.routes.items():
            firsts = {op.segments[0] for op in ops if op.segments and op.segments[0] is not None}
            self._by_first[key] = {
                first: [op for op in ops if op.segments[0] is None or op.segments[0] == first]
                for first in firsts
            }
            self._by_param[key] = [op for op in ops if not op.segments or op.segments[0] is None]

    def _candidates(self, method: str, lowered: list[str]) -> list[Operation]:
        key = (method, len(lowered))
        if not lowered:
            return self.routes.get(key, [])
        narrowed = self._by_first.get(key, {}).get(lowered[0])
        return narrowed if narrowed is not None else self._by_param.get(key, [])

    def match(self, method: str, parts: list[str]) -> tuple[Operation | None, str | None, bool]:
        """Return (operation, path value, path known under another method)."""
        lowered = [p.lower() for p in parts]
        found = self._match_in(self._candidates(method, lowered), parts, lowered)
        if found[0] is not None:
            return found[0], found[1], False
        for (other, n), ops in self.routes.items():
            if other != method and n == len(parts) and self._match_in(ops, parts, lowered)[0] is not None:
                return None, None, True
        return None, None, False

    def methods_at(self, parts: list[str]) -> list[str]:
        """The documented methods of a path, in the fixed order GET, POST, PUT, DELETE (for ``Allow``)."""
        lowered = [p.lower() for p in parts]
        return [
            m
            for m in API_METHODS
            if self._match_in(self.routes.get((m, len(parts)), ()), parts, lowered)[0] is not None
        ]

    @staticmethod
    def _match_in(ops: Any, parts: list[str], lowered: list[str]) -> tuple[Operation | None, str | None]:
        for op in ops:
            value: str | None = None
            for seg, part, low in zip(op.segments, parts, lowered, strict=False):
                if seg is None:
                    # Path parameters are integer keys; a word in that place belongs to a literal route.
                    if not (part.isascii() and part.isdigit()):  # '²' and '١' are digits to str.isdigit
                        break
                    value = part
                elif seg != low:
                    break
            else:
                return op, value
        return None, None


@functools.cache
def catalog() -> Catalog:
    """Compile the spec (cached)."""
    spec = load_spec()
    resources: dict[str, Resource] = {}
    operations: list[Operation] = []
    for raw in spec["resources"]:
        fields = tuple(_field(f) for f in raw.get("fields", []))
        names = [f.name for f in fields]
        columns = tuple(n for n in names if n != SERVER_DATETIME)
        stamp = next((c for c in STAMP_COLUMNS if c in columns), None)
        res = Resource(
            name=raw["name"],
            segment=raw["url_segment"],
            pk=raw.get("primary_key"),
            fields=fields,
            field_by_name={f.name: f for f in fields},
            columns=columns,
            note=raw.get("note", "") or "",
            has_server_dt=SERVER_DATETIME in names,
            has_table=bool(columns),
            pk_is_column=raw.get("primary_key") in columns,
            stamp_column=stamp,
        )
        resources[res.segment] = res
        for rop in raw.get("operations", []):
            path_params = rop.get("path_params") or []
            codes = [int(c) for c in rop.get("status_codes", []) if 200 <= int(c) < 300]
            default = 201 if rop["method"] == "POST" else 200
            op = Operation(
                resource=res,
                id=rop["id"],
                action=rop.get("action"),
                method=rop["method"],
                path=rop["path"],
                segments=_segments(rop["path"]),
                path_param=_field(path_params[0]) if path_params else None,
                query_params={p["name"].lower(): _field(p) for p in rop.get("query_params", [])},
                body_params={
                    p["name"]: _field(
                        {**p, "type": PARAM_TYPE_FIXES.get((res.name, rop["id"], p["name"]), p["type"])}
                    )
                    for p in rop.get("body_params", [])
                },
                returns=rop.get("returns", "none"),
                paginated=bool(rop.get("paginated")),
                response_model=rop.get("response_model"),
                response_fields=tuple(_field(f) for f in rop.get("response_fields") or []),
                deprecated=bool(rop.get("deprecated")),
                success_status=default if default in codes or not codes else codes[0],
                idempotent=bool(rop.get("idempotent", rop["method"] != "POST")),
                permission=rop.get("permission") or ("Read All" if rop["method"] == "GET" else "AllOthers"),
            )
            res.operations.append(op)
            operations.append(op)
    routes: dict[tuple[str, int], list[Operation]] = {}
    for op in operations:
        routes.setdefault((op.method, len(op.segments)), []).append(op)
    for ops in routes.values():
        # Literal segments win over parameters (`appointments/Slots` before `appointments/{AptNum}`).
        ops.sort(key=lambda o: sum(s is None for s in o.segments))
    return Catalog(resources=resources, operations=operations, routes=routes)
