"""Actions with behaviour of their own (appointment confirm/break/note, slots, recalls, ShortQuery, ...).

Each function answers one (url segment, operation id); everything else goes through the generic handlers.
"""

from __future__ import annotations

import re
import sqlite3
import time
from datetime import datetime
from typing import Any

import msgspec

from odapi_async.emulator._api.checks import with_checks
from odapi_async.emulator._api.handlers import ActionFn, Call, Handlers, Reply
from odapi_async.emulator._api.module_views import VIEWS
from odapi_async.emulator._api.report_views import REPORTS, mark_web_sched
from odapi_async.emulator._api.rules import RULES
from odapi_async.emulator._api.slots import (
    WEB_SCHED_MINUTES,
    Slot,
    date_window,
    open_slots,
    pattern_minutes,
    pieces,
)
from odapi_async.emulator._api.wire import parse_date
from odapi_async.emulator._practice.db import ApiError

#: The procedure a broken appointment's ``breakType`` adds (the docs: Missed D9986, Cancelled D9987).
BREAK_CODES = {"missed": "D9986", "cancelled": "D9987"}
SHORT_QUERY_PAGE = 100
SHORT_QUERY_SECONDS = 5.0
_DATETIME_TEXT = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$")
_LEADING_COMMENTS = re.compile(r"^(\s+|--[^\n]*\n?|/\*.*?\*/)+", re.S)
#: Authorizer codes a read-only query may need: SELECT, READ, FUNCTION, RECURSIVE.
_READ_ONLY_CODES = frozenset({sqlite3.SQLITE_SELECT, sqlite3.SQLITE_READ, sqlite3.SQLITE_FUNCTION, 33})


def _res(h: Handlers, segment: str) -> Any:
    return h.practice.cat.resources[segment]


def _appointment(h: Handlers, call: Call) -> dict[str, Any]:
    res = call.op.resource
    row = h.practice.row(res, call.key) if call.key is not None else None
    if row is None:
        raise h.not_found(res, call.key)
    return row


def _commlog(h: Handlers, pat_num: int, note: str) -> None:
    h.practice.insert(
        _res(h, "commlogs"),
        {"PatNum": pat_num, "Note": note, "CommDateTime": h.practice.now_text(), "SentOrReceived": "Neither"}
        if "SentOrReceived" in _res(h, "commlogs").columns
        else {"PatNum": pat_num, "Note": note},
    )


# -- appointments ---------------------------------------------------------------------------------------------
def appointment_confirm(h: Handlers, call: Call) -> Reply:
    row = _appointment(h, call)
    defs = _res(h, "definitions")
    def_num = call.args.get("defNum")
    value = call.args.get("confirmVal")
    if def_num is None and value is None:
        raise ApiError(400, "confirmVal or defNum is required.")
    changes: dict[str, Any] = {}
    if def_num is not None:
        if not h.practice.exists(defs, int(def_num)):
            raise ApiError(404, f"Definition {def_num} was not found.")
        changes["Confirmed"] = int(def_num)
    else:
        found = h.practice.db.execute(
            'SELECT "DefNum" FROM "definitions" WHERE "ItemName" = ? COLLATE NOCASE ORDER BY "DefNum" LIMIT 1',
            (value,),
        ).fetchone()
        if found:
            changes["Confirmed"] = int(found[0])
        else:
            changes["confirmed"] = value
    h.practice.update(call.op.resource, int(row["AptNum"]), changes)
    return Reply(200, b"", None)


def appointment_break(h: Handlers, call: Call) -> Reply:
    row = _appointment(h, call)
    if row["AptStatus"] != "Scheduled":
        raise ApiError(400, "Only a scheduled appointment can be broken.")
    kind = str(call.args.get("breakType") or "")
    code = BREAK_CODES.get(kind.lower()) if kind else None
    if kind and code is None:
        raise ApiError(400, "breakType must be Missed or Cancelled.")
    status = "UnschedList" if call.args.get("sendToUnscheduledList") == "true" else "Broken"
    h.practice.update(call.op.resource, int(row["AptNum"]), {"AptStatus": status})
    if code is not None:  # the documented broken-appointment procedure, completed today, at the code's fee
        found = h.practice.db.execute(
            'SELECT c."CodeNum", coalesce((SELECT f."Amount" FROM fees f WHERE f."CodeNum" = c."CodeNum" '
            'ORDER BY f."FeeNum" LIMIT 1), 0) FROM procedurecodes c WHERE c."ProcCode" = ?',
            (code,),
        ).fetchone()
        if found is None:
            raise ApiError(400, f"The office has no procedure code {code} for a broken appointment.")
        h.practice.insert(
            _res(h, "procedurelogs"),
            {
                "PatNum": row["PatNum"],
                "ProcDate": h.practice.now_text()[:10],
                "ProcStatus": "C",
                "CodeNum": int(found[0]),
                "ProcFee": float(found[1] or 0),
                "ProvNum": row["ProvNum"],
                "ClinicNum": row["ClinicNum"],
            },
        )
    _commlog(h, int(row["PatNum"]), f"Appointment broken ({call.args.get('breakType') or 'unspecified'}).")
    return Reply(200, b"", None)


def appointment_note(h: Handlers, call: Call) -> Reply:
    """Append a line: "If a note already exists, a CR is included before the new note" (the desktop's CR LF)."""
    row = _appointment(h, call)
    old = row["Note"] or ""
    new = old + "\r\n" + call.args["Note"] if old else call.args["Note"]
    h.practice.update(call.op.resource, int(row["AptNum"]), {"Note": new})
    return Reply(200, b"", None)


def appointment_asap(h: Handlers, call: Call) -> Reply:
    return h.list(call, extra=(["\"Priority\" = 'ASAP'"], []))


def _query_int(call: Call, name: str) -> int | None:
    raw = call.query.get(name, "").strip()
    return int(raw) if raw else None  # the parameter check has already refused anything but a whole number


def _today(h: Handlers) -> str:
    return h.practice.now_text()[:10]


def _default_provider(h: Handlers) -> int | None:
    row = h.practice.db.execute(
        'SELECT "ValueString" FROM "preferences" WHERE "PrefName" = \'PracticeDefaultProv\' LIMIT 1'
    ).fetchone()
    return int(row[0]) if row and str(row[0]).strip().isdigit() else None


def _window(h: Handlers, call: Call) -> tuple[str, str]:
    return date_window(
        parse_date(call.query.get("date", "")),
        parse_date(call.query.get("dateStart", "")),
        parse_date(call.query.get("dateEnd", "")),
        _today(h),
    )


def _slot_page(call: Call, slots: list[Slot]) -> Reply:
    page = slots[call.offset : call.offset + call.limit]
    return Reply(200, msgspec.json.encode([s.as_wire() for s in page]))


def appointment_slots(h: Handlers, call: Call) -> Reply:
    """Entire open stretches of provider schedules; ``lengthMinutes`` leaves out the shorter ones."""
    length = _query_int(call, "lengthMinutes") or 0
    if length < 0:
        raise ApiError(400, "lengthMinutes must not be negative.")
    prov = _query_int(call, "ProvNum")
    if prov is None:
        prov = _default_provider(h)  # documented: "Defaults to the Practice Default Provider"
    first, last = _window(h, call)
    slots = open_slots(h.practice.db, first, last, prov=prov, op=_query_int(call, "OpNum"), min_length=length)
    return _slot_page(call, slots)


def appointment_slots_web_sched(h: Handlers, call: Call) -> Reply:
    """Open times as WebSched offers them: back-to-back half-hour pieces of the open stretches."""
    first, last = _window(h, call)
    slots = open_slots(h.practice.db, first, last, prov=None, op=None, min_length=WEB_SCHED_MINUTES)
    return _slot_page(call, pieces(slots, WEB_SCHED_MINUTES))


def appointment_planned(h: Handlers, call: Call) -> Reply:
    values = dict(call.body)
    values["AptStatus"] = "Planned"
    reply = h.create(call, values=values)
    procs = call.args.get("procNums")
    if procs:
        apt = msgspec.json.decode(reply.body)["AptNum"]
        for num in msgspec.json.decode(procs):
            h.practice.update(_res(h, "procedurelogs"), int(num), {"PlannedAptNum": str(apt)})
    return reply


def appointment_schedule_planned(h: Handlers, call: Call) -> Reply:
    res = call.op.resource
    planned = h.practice.row(res, int(call.args["AptNum"]))
    if planned is None or planned["AptStatus"] != "Planned":
        raise ApiError(404, f"No planned appointment has AptNum {call.args['AptNum']}.")
    values = {k: v for k, v in planned.items() if k != res.pk}
    values.update(call.body)
    values.pop("AptNum", None)
    values["AptStatus"] = "Scheduled"
    return h.create(call, values=values)


def appointment_websched(h: Handlers, call: Call) -> Reply:
    a = call.args
    start = datetime.fromisoformat(a["DateTimeStart"])
    end = datetime.fromisoformat(a["DateTimeEnd"])
    if end <= start:
        raise ApiError(400, "DateTimeEnd must be after DateTimeStart.")
    values = {
        "PatNum": a["PatNum"],
        "AptDateTime": a["DateTimeStart"],
        "Pattern": "X" * max(int((end - start).total_seconds() // 300), 1),
        "ProvNum": a["ProvNum"],
        "Op": a["OpNum"],
        "AptStatus": "Scheduled",
        "AppointmentTypeNum": a["defNumApptType"],
    }
    reply = h.create(call, values=values)
    mark_web_sched(h, int(msgspec.json.decode(reply.body)["AptNum"]), int(a["PatNum"]))
    return reply


# -- patient notes --------------------------------------------------------------------------------------------
def _ensure_patient_note(h: Handlers, call: Call) -> None:
    """Notes are one-to-one with patients: a patient without a note row gets an empty one on first use."""
    notes = call.op.resource
    if call.key is None or h.practice.exists(notes, call.key):
        return
    if not h.practice.exists(_res(h, "patients"), call.key):
        raise ApiError(404, f"Patient {call.key} was not found.")
    h.practice.insert(notes, {"PatNum": call.key})


def patient_note_get(h: Handlers, call: Call) -> Reply:
    _ensure_patient_note(h, call)
    return h.get_one(call)


def patient_note_update(h: Handlers, call: Call) -> Reply:
    _ensure_patient_note(h, call)
    return h.update(call)


# -- recalls --------------------------------------------------------------------------------------------------
def _recall_types(h: Handlers) -> dict[str, int]:
    rows = h.practice.db.execute('SELECT "Description", "RecallTypeNum" FROM "recalltypes"').fetchall()
    return {str(d).lower(): int(n) for d, n in rows}


def recall_switch_type(h: Handlers, call: Call) -> Reply:
    """Toggle a patient's recall between Prophy and Perio (not idempotent, as documented)."""
    types = _recall_types(h)
    prophy, perio = types.get("prophy"), types.get("perio")
    if prophy is None or perio is None:
        raise ApiError(400, "The office has no Prophy/Perio recall types to switch between.")
    res = _res(h, "recalls")
    rows = h.practice.rows(
        res, '"PatNum" = ? AND "RecallTypeNum" IN (?, ?)', (call.args["PatNum"], prophy, perio)
    )
    if not rows:
        raise ApiError(404, f"Patient {call.args['PatNum']} has no Prophy or Perio recall.")
    for row in rows:
        new = perio if int(row["RecallTypeNum"]) == prophy else prophy
        h.practice.update(res, int(row["RecallNum"]), {"RecallTypeNum": new})
    return Reply(200, b"", None)


def recall_status(h: Handlers, call: Call) -> Reply:
    res = _res(h, "recalls")
    type_num = _recall_types(h).get(str(call.args["recallType"]).lower())
    where, args = '"PatNum" = ?', [call.args["PatNum"]]
    if type_num is not None:
        where += ' AND "RecallTypeNum" = ?'
        args.append(type_num)
    rows = h.practice.rows(res, where, args)
    if not rows:
        raise ApiError(404, f"Patient {call.args['PatNum']} has no such recall.")
    if "RecallStatus" in call.args:
        h.practice.update(res, int(rows[0]["RecallNum"]), {"RecallStatus": call.args["RecallStatus"]})
    _commlog(h, int(call.args["PatNum"]), str(call.args.get("commlogNote") or "Recall status changed."))
    return Reply(200, b"", None)


# -- modules --------------------------------------------------------------------------------------------------
def _patient(h: Handlers, call: Call) -> dict[str, Any]:
    pats = _res(h, "patients")
    row = h.practice.row(pats, call.key) if call.key is not None else None
    if row is None:
        raise h.not_found(pats, call.key)
    return row


def account_aging(h: Handlers, call: Call) -> Reply:
    pat = _patient(h, call)
    total = float(pat.get("BalTotal") or 0.0)
    out = dict.fromkeys((f.name for f in call.op.response_fields), 0.0)
    out.update({"Bal_0_30": total, "Total": total, "EstBal": total, "PatEstBal": total})
    return Reply(200, msgspec.json.encode(out))


def account_patient_balances(h: Handlers, call: Call) -> Reply:
    pat = _patient(h, call)
    rows = h.practice.db.execute(
        'SELECT "PatNum", "LName", "FName", "EstBalance" FROM "patients" WHERE "Guarantor" = ? ORDER BY "PatNum"',
        (pat["Guarantor"],),
    ).fetchall()
    out = [{"PatNum": n, "Name": f"{ln}, {fn}", "Balance": float(b or 0)} for n, ln, fn, b in rows]
    return Reply(200, msgspec.json.encode(out[call.offset : call.offset + call.limit]))


def chart_planned_appts(h: Handlers, call: Call) -> Reply:
    _patient(h, call)
    apts = _res(h, "appointments")
    rows = h.practice.rows(apts, '"PatNum" = ? AND "AptStatus" = \'Planned\'', (call.key,))
    # numbers travel as text here (documented); dateSched is when the appointment made from the plan is booked
    out = []
    for r in rows:
        booked = h.practice.db.execute(
            'SELECT "AptDateTime" FROM appointments WHERE "NextAptNum" = ? AND "AptStatus" != \'Planned\' '
            'ORDER BY "AptDateTime" LIMIT 1',
            (r["AptNum"],),
        ).fetchone()
        out.append(
            {
                "AptNum": str(r["AptNum"]),
                "ProvNum": str(r["ProvNum"]),
                "ItemOrder": str(r.get("ItemOrderPlanned") or 0),
                "minutes": str(pattern_minutes(r["Pattern"])),
                "ProcDescript": r["ProcDescript"],
                "Note": r["Note"],
                "dateSched": booked[0] if booked else "0001-01-01 00:00:00",
                "AptStatus": r["AptStatus"],
            }
        )
    return Reply(200, msgspec.json.encode(out[call.offset : call.offset + call.limit]))


# -- queries --------------------------------------------------------------------------------------------------
def _authorize(action: int, *_: Any) -> int:
    return sqlite3.SQLITE_OK if action in _READ_ONLY_CODES else sqlite3.SQLITE_DENY


def short_query(h: Handlers, call: Call) -> Reply:
    """Run read-only SQL over the emulator's database, 100 rows a page (every listener), paged by Offset."""
    sql = str(call.args.get("SqlCommand") or "").strip()
    if not sql:
        raise ApiError(400, "SqlCommand is required.")
    head = _LEADING_COMMENTS.sub("", sql).split(None, 1)
    if not head or head[0].upper() not in ("SELECT", "WITH"):
        raise ApiError(401, "Only read-only queries (SELECT) may be run.")
    sql = sql.rstrip().rstrip(";")
    limit = min(call.limit, SHORT_QUERY_PAGE)
    db = h.practice.db
    deadline = time.monotonic() + SHORT_QUERY_SECONDS
    db.set_authorizer(_authorize)
    db.set_progress_handler(lambda: int(time.monotonic() > deadline), 20_000)
    try:
        cur = db.execute(f"SELECT * FROM ({sql}) LIMIT ? OFFSET ?", (limit, call.offset))
        names = [d[0] for d in cur.description or ()]
        rows = cur.fetchall()
    except sqlite3.DatabaseError as exc:
        message = str(exc)
        if "not authorized" in message:
            raise ApiError(401, "Only read-only queries (SELECT) may be run.") from None
        if "interrupted" in message:
            raise ApiError(400, "The query ran too long and was stopped.") from None
        raise ApiError(400, f"The query failed: {message}.") from None
    finally:
        db.set_authorizer(None)
        db.set_progress_handler(None, 0)
    out = []
    for row in rows:
        item: dict[str, Any] = {}
        for name, value in zip(names, row, strict=False):
            if isinstance(value, str) and _DATETIME_TEXT.match(value):
                value = value.replace(" ", "T")  # MySQL datetimes come back ISO-style from ShortQuery
            item[name] = value
        out.append(item)
    return Reply(200, msgspec.json.encode(out))


ACTIONS: dict[tuple[str, str], ActionFn] = with_checks(
    {
        ("appointments", "Confirm"): appointment_confirm,
        ("appointments", "Break"): appointment_break,
        ("appointments", "Note"): appointment_note,
        ("appointments", "ASAP"): appointment_asap,
        ("appointments", "Slots"): appointment_slots,
        ("appointments", "SlotsWebSched"): appointment_slots_web_sched,
        ("appointments", "Planned"): appointment_planned,
        ("appointments", "SchedulePlanned"): appointment_schedule_planned,
        ("appointments", "PostWebSched"): appointment_websched,
        ("patientnotes", "get"): patient_note_get,
        ("patientnotes", "update"): patient_note_update,
        ("recalls", "SwitchType"): recall_switch_type,
        ("recalls", "Status"): recall_status,
        ("accountmodules", "Aging"): account_aging,
        ("accountmodules", "PatientBalances"): account_patient_balances,
        ("chartmodules", "PlannedAppts"): chart_planned_appts,
        ("queries", "ShortQuery"): short_query,
        **VIEWS,
        **REPORTS,
        **RULES,
    }
)
