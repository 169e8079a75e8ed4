"""Request validation and the generic handlers: GET single/list, POST, PUT, DELETE.

``prepare`` turns a matched operation plus raw query/body into a :class:`Call` (or raises :class:`ApiError`
with the explanation the real server would give); ``Handlers.handle`` answers it. Actions with their own
behaviour live in ``_api.actions`` and are looked up by (url segment, operation id).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from odapi_async.emulator._api.wire import (
    MAX_KEY,
    MAX_KEY_DIGITS,
    WireError,
    parse_date,
    parse_datetime,
    to_store,
)
from odapi_async.emulator._catalog.routes import (
    FORMAT_PARAMS,
    SERVER_DATETIME,
    Field,
    Operation,
    Resource,
)
from odapi_async.emulator._catalog.row_shapes import row_fields, row_forms
from odapi_async.emulator._practice.db import ApiError, Practice, quote_ident
from odapi_async.emulator._practice.schema import zero

#: The one datetime form the docs allow in parameters.
STRICT_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$")

#: Parameters filtering "changed on or after" (the incremental-sync watermark family).
SINCE_PARAMS = frozenset({"DateTStamp", "SecDateTEdit", "SigDateTime", "DateEntry", "DateTimeOriginal"})
#: Column that `date` / `dateStart` / `dateEnd` range over, per resource.
DATE_COLUMNS = {
    "appointments": "AptDateTime",
    "asapcomms": "DateTimeOrig",
    "clockevents": "TimeDisplayed1",
    "histappointments": "HistDateTStamp",
    "schedules": "SchedDate",
}
#: Patients GET multiple matches these text filters by prefix, like a search box.
_PREFIX_FILTERS = frozenset({"LName", "FName", "Address", "City", "State", "Email", "ChartNumber", "SSN"})

#: Values a POST gets when the body leaves them out (the desktop program's defaults, not zero values).
_CREATE_DEFAULTS: dict[str, dict[str, Any]] = {
    "appointments": {"AptStatus": "Scheduled", "Priority": "Normal"},
    "patients": {"PatStatus": "Patient"},
    "procedurelogs": {"ProcStatus": "TP"},
}

#: Body fields the spec marks required where the docs mean "one of these, depending on the procedure code".
_EITHER_OF: dict[tuple[str, str], tuple[str, ...]] = {
    ("procedurelogs", "create"): ("ToothNum", "ToothRange", "Surf"),
}


@dataclass
class Call:
    """A validated request."""

    op: Operation
    listener: str
    cap: int
    key: int | None
    query: dict[str, str]  # canonical parameter name -> raw text
    body: dict[str, Any]  # resource columns -> stored values (body params that are columns)
    args: dict[str, Any]  # every accepted body parameter -> stored value (actions read these)
    offset: int
    limit: int
    base_url: str


@dataclass
class Reply:
    status: int
    body: bytes = b""
    media_type: str | None = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


def text(status: int, message: str) -> Reply:
    return Reply(status, message.encode(), "text/plain; charset=utf-8")


def adapt(col: Field, value: Any) -> Any:
    """Bring a parameter's stored form to the column's (a few columns travel as numeric strings)."""
    if col.type == "int":
        if col.numeric_string and isinstance(value, int):
            return str(value)
        if not col.numeric_string and isinstance(value, str) and value.lstrip("-").isdigit():
            return int(value)
    elif col.type == "float":
        if col.numeric_string and isinstance(value, (int, float)):
            return f"{float(value):.2f}"
        if not col.numeric_string and isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                return value
    return value


def _int(name: str, raw: str) -> int:
    if len(raw.strip().lstrip("-").lstrip("0")) > MAX_KEY_DIGITS and raw.strip().lstrip("-").isdigit():
        raise ApiError(400, f"{name} is invalid: '{raw[:40]}' is too large.")
    try:
        n = int(raw)
    except ValueError:
        raise ApiError(400, f"{name} is invalid: '{raw[:40]}' is not a whole number.") from None
    if n < 0:
        raise ApiError(400, f"{name} must not be negative.")
    if n > MAX_KEY:
        raise ApiError(400, f"{name} is invalid: '{raw[:40]}' is too large.")
    return n


def prepare(
    op: Operation,
    *,
    listener: str,
    cap: int,
    key: str | None,
    query: list[tuple[str, str]],
    body: Any,
    base_url: str,
) -> Call:
    """Validate query parameters and body against the spec; raise ApiError(400/410) like the server."""
    if op.deprecated:
        raise ApiError(410, f"{op.method} {op.path} is deprecated and no longer available.")
    params: dict[str, str] = {}
    offset, limit = 0, cap
    for name, value in query:
        low = name.lower()
        if low == "offset":
            offset = _int("Offset", value)
        elif low == "limit":
            asked = _int("Limit", value)
            limit = cap if asked == 0 or asked > cap else asked
        elif name in FORMAT_PARAMS:
            continue  # accepted everywhere by the real server; the emulator keeps the default formats
        else:
            p = op.query_params.get(low)
            if p is None:
                raise ApiError(400, f"'{name}' is not a valid parameter.")
            params[p.name] = value
    for p in op.required_query:
        if not params.get(p.name, "").strip():
            raise ApiError(400, f"{p.name} is required.")
    for pname, raw in params.items():
        p = op.query_params[pname.lower()]
        if p.type == "datetime" and raw != "" and not STRICT_DATETIME.match(raw):
            # the docs require this one form; the live server refuses a bare date or an ISO 'T'
            raise ApiError(
                400, f"{p.name} is invalid: '{raw[:40]}' is not in the format yyyy-MM-dd HH:mm:ss."
            )
        if p.type in ("int", "bool", "date", "datetime", "enum") and raw != "":
            try:
                to_store(p, raw)
            except WireError as exc:
                raise ApiError(400, str(exc)) from None

    res = op.resource
    columns: dict[str, Any] = {}
    args: dict[str, Any] = {}
    if body is not None:
        if not isinstance(body, dict):
            raise ApiError(400, "The request body must be a JSON object.")
        folded: dict[str, Field] | None = None  # built on the first name that does not match exactly
        for name, value in body.items():
            p = op.body_params.get(name)
            col = res.field_by_name.get(name)
            if p is None and col is not None and col.derived:
                continue  # read-only helper fields are ignored, as the server does
            if p is None:
                # The docs' own example bodies vary the case of a name (dateTimeStart, Birthdate for
                # DateTimeStart, BirthDate): the server matches names without regard to case.
                if folded is None:
                    folded = {k.lower(): v for k, v in op.body_params.items()}
                p = folded.get(name.lower())
                col = col or (res.field_by_name.get(p.name) if p is not None else None)
            if p is None:
                if not op.body_params and col is not None and name != res.pk:
                    p = col  # schema-fallback resources: no documented body, accept their fields
                else:
                    raise ApiError(400, f"'{name}' is not a valid field for {op.method} {op.path}.")
            try:
                stored = to_store(p, value)
            except WireError as exc:
                raise ApiError(400, str(exc)) from None
            args[p.name] = stored
            if col is not None and col.name != SERVER_DATETIME and col.name in res.columns:
                columns[col.name] = adapt(col, stored)
    alternatives = _EITHER_OF.get((res.segment, op.id), ())
    for p in op.required_body:
        if p.name not in args and not (p.name in alternatives and any(a in args for a in alternatives)):
            raise ApiError(400, f"{p.name} is required.")
    if key is not None and (len(key.lstrip("0")) > MAX_KEY_DIGITS or int(key) > MAX_KEY):
        name = op.path_param.name if op.path_param else "The key"
        raise ApiError(400, f"{name} is invalid: '{key[:40]}' is too large.")
    return Call(
        op=op,
        listener=listener,
        cap=cap,
        key=int(key) if key is not None else None,
        query=params,
        body=columns,
        args=args,
        offset=offset,
        limit=limit,
        base_url=base_url,
    )


ActionFn = Callable[["Handlers", Call], Reply]


class Handlers:
    """Answers validated calls from the practice database."""

    def __init__(self, practice: Practice, actions: dict[tuple[str, str], ActionFn]) -> None:
        self.practice = practice
        self.actions = actions

    # -- dispatch -------------------------------------------------------------------------------------------
    def handle(self, call: Call) -> Reply:
        op = call.op
        special = self.actions.get((op.resource.segment, op.id))
        if special is not None:
            return special(self, call)
        return self.standard(call)

    def standard(self, call: Call) -> Reply:
        """The generic answer of an operation (what ``handle`` gives when no action of its own is listed)."""
        op = call.op
        if not op.resource.has_table:
            return self.generic_action(call)
        if op.method == "GET":
            if op.id == "get" and call.key is not None and op.path_param is not None:
                return self.get_one(call)
            if op.id == "list" or (op.returns == "list" and op.response_model == "resource"):
                return self.list(call)
            if op.id == "get" and op.returns == "object":
                return self.get_first(call)
            return self.generic_action(call)
        if op.id == "create":
            return self.create(call)
        if op.id == "update":
            return self.update(call) if call.key is not None else self.upsert(call)
        if op.id == "delete":
            return self.delete(call)
        return self.generic_action(call)

    # -- helpers --------------------------------------------------------------------------------------------
    def location(self, call: Call, res: Resource, pk: int) -> dict[str, str]:
        if res.op("get") is None:
            return {}
        return {"Location": f"{call.base_url}/{res.segment}/{pk}"}

    def not_found(self, res: Resource, key: int | None) -> ApiError:
        return ApiError(404, f"No {res.name} row has {res.pk} {key}.")

    def object_reply(self, call: Call, res: Resource, pk: int, status: int) -> Reply:
        op = call.op
        if op.returns != "object":
            return Reply(status, b"", None)
        body = self.practice.one_json(res, pk, cols=row_fields(op), forms=row_forms(op))
        return Reply(status, body or b"{}")

    def require(self, res: Resource, key: int | None) -> int:
        if key is None or not self.practice.exists(res, key):
            raise self.not_found(res, key)
        return key

    def check_refs(self, res: Resource, values: dict[str, Any]) -> None:
        """Refuse writes pointing at a patient or appointment that does not exist (404, as documented)."""
        for column, target in (("PatNum", "patients"), ("AptNum", "appointments")):
            if column not in values or res.segment == target:
                continue
            try:
                key = int(values[column])
            except (TypeError, ValueError):
                continue
            if key and not self.practice.exists(self.practice.cat.resources[target], key):
                raise ApiError(404, f"{column} {key} was not found.")

    # -- filters --------------------------------------------------------------------------------------------
    def filters(self, call: Call) -> tuple[list[str], list[Any], bool]:
        """SQL conditions for the query parameters; also whether rows carry serverDateTime."""
        res = call.op.resource
        where: list[str] = []
        args: list[Any] = []
        with_sdt = True
        date_col = DATE_COLUMNS.get(res.segment)
        for name, raw in call.query.items():
            if raw == "":
                continue
            p = call.op.query_params[name.lower()]
            col = res.field_by_name.get(name)
            if col is None or (col.derived and col.type != "bool"):
                lname = name.lower()
                if date_col and lname in ("date", "datestart", "dateend"):
                    day = parse_date(raw) or raw
                    op = {"date": "=", "datestart": ">=", "dateend": "<="}[lname]
                    where.append(f"substr({quote_ident(date_col)}, 1, 10) {op} ?")
                    args.append(day)
                else:
                    self.special_filter(call, name, raw, where, args)
                    if res.segment == "providers" and name == "ClinicNum":
                        with_sdt = False  # documented: no serverDateTime when filtered by clinic
                continue
            if name in SINCE_PARAMS and col.type in ("date", "datetime"):
                value = parse_datetime(raw) or raw
                where.append(f"{self.practice.col(res, name)} >= ?")
                args.append(value if col.type == "datetime" else value[:10])
                continue
            try:
                value = adapt(col, to_store(p if p.type == col.type else col, raw))
            except WireError as exc:
                raise ApiError(400, str(exc)) from None
            self.practice.ensure_index(res, name)
            if col.type in ("enum", "bool", "str"):
                if res.segment == "patients" and name in _PREFIX_FILTERS:
                    where.append(f"{self.practice.col(res, name)} LIKE ?")
                    args.append(str(value).replace("%", "").replace("_", "") + "%")
                else:
                    where.append(f"{self.practice.col(res, name)} = ? COLLATE NOCASE")
                    args.append(value)
            else:
                where.append(f"{self.practice.col(res, name)} = ?")
                args.append(value)
        if res.segment == "patients" and call.op.id == "list":
            if call.query.get("showArchived", "").lower() != "true":
                where.append("\"PatStatus\" NOT IN ('Archived', 'Deleted')")
            if call.query.get("hideInactive", "").lower() == "true":
                where.append("\"PatStatus\" != 'Inactive'")
            if call.query.get("guarOnly", "").lower() == "true":
                where.append('"Guarantor" = "PatNum"')
        return where, args, with_sdt

    def special_filter(self, call: Call, name: str, raw: str, where: list[str], args: list[Any]) -> None:
        """Parameters that are not a column of their own; unknown ones are accepted and ignored."""
        seg = call.op.resource.segment
        if seg == "patients" and name == "Phone":
            digits = "".join(ch for ch in raw if ch.isdigit())
            cols = ("HmPhone", "WkPhone", "WirelessPhone")
            strip = "replace(replace(replace(replace({c}, '-', ''), '(', ''), ')', ''), ' ', '')"
            where.append("(" + " OR ".join(strip.format(c=quote_ident(c)) + " LIKE ?" for c in cols) + ")")
            args.extend([f"%{digits}%"] * 3)
        elif seg == "patients" and name == "clinicNums":
            nums = [int(x) for x in raw.split(",") if x.strip().isdigit()]
            if nums:
                where.append(f'"ClinicNum" IN ({", ".join("?" for _ in nums)})')
                args.extend(nums)
        elif seg in ("definitions", "userods") and name == "includeHidden":
            pass  # handled below by the default that hides hidden rows
        # everything else (SiteNum, includeCEMT, ...) is accepted and has no effect here

    # -- generic operations ---------------------------------------------------------------------------------
    def get_one(self, call: Call) -> Reply:
        res = call.op.resource
        assert call.key is not None
        body = self.practice.one_json(res, call.key, cols=row_fields(call.op), forms=row_forms(call.op))
        if body is None:
            raise self.not_found(res, call.key)
        return Reply(200, body)

    def list(self, call: Call, *, extra: tuple[list[str], list[Any]] | None = None) -> Reply:
        res = call.op.resource
        where, args, with_sdt = self.filters(call)
        if extra:
            where += extra[0]
            args += extra[1]
        if (
            res.segment in ("definitions", "userods")
            and call.query.get("includeHidden", "").lower() != "true"
        ):
            hidden = "isHidden" if res.segment == "definitions" else "IsHidden"
            where.append(f"{self.practice.col(res, hidden)} != 'true'")
        cols: Sequence[str] | None = row_fields(call.op)
        if call.op.response_model != "resource" and call.op.response_fields:
            cols = [f.name for f in call.op.response_fields]
        if cols is not None:
            with_sdt = with_sdt and SERVER_DATETIME in cols
        body = self.practice.list_json(
            res,
            where,
            args,
            limit=call.limit,
            offset=call.offset,
            with_sdt=with_sdt,
            cols=cols,
            forms=row_forms(call.op),
        )
        return Reply(200, body)

    def get_first(self, call: Call) -> Reply:
        res = call.op.resource
        where, args, _ = self.filters(call)
        body = self.practice.first_json(res, where, args, cols=row_fields(call.op), forms=row_forms(call.op))
        if body is None:
            raise ApiError(404, f"No {res.name} row matches the given parameters.")
        return Reply(200, body)

    def create(self, call: Call, *, values: dict[str, Any] | None = None) -> Reply:
        res = call.op.resource
        values = dict(call.body if values is None else values)
        if res.pk_is_column and res.pk:
            values.pop(res.pk, None)  # keys are assigned by the server
        for name, default in _CREATE_DEFAULTS.get(res.segment, {}).items():
            values.setdefault(name, default)
        self.check_refs(res, values)
        pk = self.practice.insert(res, values)
        self.after_create(res, pk, values)
        reply = self.object_reply(call, res, pk, call.op.success_status)
        reply.headers.update(self.location(call, res, pk))
        return reply

    def after_create(self, res: Resource, pk: int, values: dict[str, Any]) -> None:
        """Defaults that depend on the new key (a new patient is their own guarantor)."""
        if res.segment == "patients" and not values.get("Guarantor"):
            self.practice.update(res, pk, {"Guarantor": pk})

    def update(self, call: Call) -> Reply:
        res = call.op.resource
        key = self.require(res, call.key)
        self.check_refs(res, call.body)
        self.practice.update(res, key, call.body)
        return self.object_reply(call, res, key, call.op.success_status)

    def upsert(self, call: Call) -> Reply:
        """PUT without a key in the path (ApptFields, PatFields, InsVerifies): match on the required fields."""
        res = call.op.resource
        keys = [p.name for p in call.op.required_body if "Value" not in p.name and p.name in res.columns]
        where = " AND ".join(f"{quote_ident(k)} = ?" for k in keys)
        found = self.practice.rows(res, where, [call.body[k] for k in keys]) if keys else []
        if found and res.pk_is_column and res.pk:
            pk = int(found[0][res.pk])
            self.practice.update(res, pk, call.body)
        elif found:
            self.practice.db.execute(
                f"UPDATE {quote_ident(res.segment)} SET {', '.join(self.practice.col(res, c) + ' = ?' for c in call.body)} WHERE {where}",
                [*call.body.values(), *(call.body[k] for k in keys)],
            )
            self.practice.db.commit()
            return Reply(call.op.success_status, b"", None)
        else:
            self.check_refs(res, call.body)
            pk = self.practice.insert(res, call.body)
        if not (res.pk_is_column and res.pk):
            return Reply(call.op.success_status, b"", None)
        return self.object_reply(call, res, pk, call.op.success_status)

    def delete(self, call: Call) -> Reply:
        res = call.op.resource
        key = self.require(res, call.key)
        self.practice.delete(res, key)
        return Reply(call.op.success_status, b"", None)

    def generic_action(self, call: Call) -> Reply:
        """Plausible answers for actions without their own behaviour."""
        op = call.op
        res = op.resource
        if op.path_param is not None and call.key is not None:
            target = res if res.has_table and op.path_param.name == res.pk else None
            if target is None and op.path_param.name == "PatNum":
                target = self.practice.cat.resources["patients"]
            if target is not None:
                self.require(target, call.key)
        if op.method == "GET":
            names = {f.name for f in op.response_fields} - {SERVER_DATETIME}
            if res.has_table and names and names <= set(res.field_by_name):
                return self.list(call)
            if op.returns == "list":
                return Reply(200, b"[]")
            return Reply(200, self.zero_object(op.response_fields))
        pk_in_path = op.path_param is not None and op.path_param.name == res.pk
        if op.method == "PUT" and res.has_table and call.key is not None and pk_in_path:
            self.practice.update(res, call.key, call.body)
            if op.response_model == "resource":
                return self.object_reply(call, res, call.key, op.success_status)
        if (
            op.method == "POST"
            and res.has_table
            and op.response_model == "resource"
            and op.returns == "object"
        ):
            return self.create(call)
        if op.returns == "list":
            return Reply(op.success_status, b"[]")
        if op.returns == "object":
            return Reply(op.success_status, self.zero_object(op.response_fields, call.args))
        return Reply(op.success_status, b"", None)

    @staticmethod
    def zero_object(fields: tuple[Field, ...], given: dict[str, Any] | None = None) -> bytes:
        import msgspec

        obj = {f.name: (given or {}).get(f.name, zero(f)) for f in fields}
        for f in fields:  # lists are kept as JSON text; answer them as arrays
            if f.type == "list" and isinstance(obj[f.name], str):
                obj[f.name] = msgspec.json.decode(obj[f.name] or "[]")
        return msgspec.json.encode(obj)
