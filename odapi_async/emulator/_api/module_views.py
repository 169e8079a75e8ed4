"""GET actions that compute a module's view of one patient: progress notes, patient info, account, insurance.

The real server builds these from its tables the way the desktop program's screens do; the emulator builds
them from its own practice with the documented row shapes and value forms (most fields are text, dates in
the US forms the screens show). The figures are plausible, not the desktop program's exact arithmetic: see
docs/emulator.md, "What it does not model". Reports and lists across patients are in ``_api.report_views``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import date, datetime
from typing import Any

import msgspec

from odapi_async.emulator._api.handlers import ActionFn, Call, Handlers, Reply
from odapi_async.emulator._practice.db import DERIVED_SUFFIX, ApiError


def query_rows(h: Handlers, sql: str, args: Iterable[Any] = ()) -> list[dict[str, Any]]:
    cur = h.practice.db.execute(sql, list(args))
    # derived helper columns whose name clashes with a real one are stored with a suffix (see _db)
    names = [d[0].removesuffix(DERIVED_SUFFIX) for d in cur.description or ()]
    return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


def page_reply(call: Call, rows: list[dict[str, Any]]) -> Reply:
    return Reply(200, msgspec.json.encode(rows[call.offset : call.offset + call.limit]))


def patient_row(h: Handlers, call: Call, pat_num: Any = None) -> dict[str, Any]:
    pats = h.practice.cat.resources["patients"]
    key = call.key if pat_num is None else int(pat_num)
    row = h.practice.row(pats, key) if key is not None else None
    if row is None:
        raise ApiError(404, f"Patient {key} was not found.")
    return row


def parse_day(text: str) -> date | None:
    try:
        return date.fromisoformat(str(text)[:10])
    except ValueError:
        return None


def us_date(text: str, *, padded: bool = False) -> str:
    """``2022-03-16`` as the screens show it: ``3/16/2022`` (``03/16/2022`` when padded); "" for no date."""
    d = parse_day(text)
    if d is None or d.year < 1880:
        return ""
    return f"{d.month:02d}/{d.day:02d}/{d.year}" if padded else f"{d.month}/{d.day}/{d.year}"


def us_datetime(text: str) -> str:
    """``2022-02-08 15:18:00`` as ``2/8/2022 3:18:00 PM``."""
    try:
        t = datetime.fromisoformat(str(text))
    except ValueError:
        return ""
    hour = t.hour % 12 or 12
    return f"{t.month}/{t.day}/{t.year} {hour}:{t.minute:02d}:{t.second:02d} {'AM' if t.hour < 12 else 'PM'}"


def short_time(text: str) -> str:
    """``15:18`` as the chart's ``3:18p``; "" at midnight (a procedure has a date only)."""
    try:
        t = datetime.fromisoformat(str(text))
    except ValueError:
        return ""
    if (t.hour, t.minute) == (0, 0):
        return ""
    return f"{t.hour % 12 or 12}:{t.minute:02d}{'a' if t.hour < 12 else 'p'}"


def _money(x: Any) -> str:
    return f"{float(x or 0):.2f}"


def age_text(birthdate: str, today: date) -> str:
    b = parse_day(birthdate)
    if b is None or b.year < 1880:
        return ""
    return str(today.year - b.year - ((today.month, today.day) < (b.month, b.day)))


def practice_today(h: Handlers) -> date:
    return date.fromisoformat(h.practice.now_text()[:10])


def family_nums(h: Handlers, pat: dict[str, Any]) -> list[int]:
    rows = h.practice.db.execute('SELECT "PatNum" FROM patients WHERE "Guarantor" = ?', (pat["Guarantor"],))
    return [int(r[0]) for r in rows]


def sql_in(nums: list[int]) -> str:
    return "(" + ", ".join(str(int(n)) for n in nums) + ")"


# -- chart module ---------------------------------------------------------------------------------------------
def chart_prog_notes(h: Handlers, call: Call) -> Reply:
    """Appointments, procedures and commlogs of one patient, oldest first, as the progress notes list them."""
    pat = patient_row(h, call)
    blank = {f.name: "" for f in call.op.response_fields}
    out: list[tuple[str, dict[str, Any]]] = []
    for a in query_rows(h, 'SELECT * FROM appointments WHERE "PatNum" = ?', (pat["PatNum"],)):
        when = str(a["AptDateTime"])
        if not us_date(when):
            continue  # not on the schedule (planned, unscheduled list): nothing dated to show
        minutes = max(len(a["Pattern"] or ""), 1) * 5
        row = dict(
            blank, ObjectType="Appointment", PrimaryKey=str(a["AptNum"]), Date=us_date(when, padded=True)
        )
        t = datetime.fromisoformat(when)
        row.update(
            Time=short_time(when),
            DateTime=us_datetime(when),
            Description=f"Appointment - {t.hour % 12 or 12}:{t.minute:02d} {'AM' if t.hour < 12 else 'PM'} "
            f"{a['ProcDescript'] or ''}".rstrip(),
            note=a["Note"] or "",
            Length=f"{minutes // 60}:{minutes % 60:02d}",
            ClinicNum=str(a["ClinicNum"]),
        )
        out.append((when, row))
    procs = query_rows(
        h,
        'SELECT p.*, c."AbbrDesc", cl."Description" AS clinic, n."Note" AS pnote, n."isSigned" AS signed '
        "FROM procedurelogs p "
        'LEFT JOIN procnotes n ON n."ProcNoteNum" = (SELECT max("ProcNoteNum") FROM procnotes x '
        'WHERE x."PatNum" = p."PatNum" AND x."ProcNum" = p."ProcNum") '
        'LEFT JOIN procedurecodes c ON c."CodeNum" = p."CodeNum" '
        'LEFT JOIN clinics cl ON cl."ClinicNum" = p."ClinicNum" WHERE p."PatNum" = ?',
        (pat["PatNum"],),
    )
    for p in procs:
        when = str(p["ProcDate"])[:10] + " 00:00:00"
        row = dict(
            blank, ObjectType="Procedure", PrimaryKey=str(p["ProcNum"]), Date=us_date(when, padded=True)
        )
        row.update(
            DateTime=us_datetime(when),
            Th=p["ToothNum"] or "",
            Surf=p["Surf"] or "",
            Dx=p["dxName"] or "",
            Description=p["descript"] or "",
            note=p["pnote"] or "",
            Signed="Signed" if str(p["signed"]).lower() == "true" else "",
            Stat=p["ProcStatus"] or "",
            Prov=p["provAbbr"] or "",
            ProvNum=str(p["ProvNum"]),
            Amount=_money(p["ProcFee"]),
            ProcCode=p["procCode"] or "",
            Abbr=p["AbbrDesc"] or "",
            Clinic=p["clinic"] or "",
            ClinicNum=str(p["ClinicNum"]),
        )
        out.append((when, row))
    for c in query_rows(h, 'SELECT * FROM commlogs WHERE "PatNum" = ?', (pat["PatNum"],)):
        when = str(c["CommDateTime"])
        row = dict(
            blank, ObjectType="Commlog", PrimaryKey=str(c["CommlogNum"]), Date=us_date(when, padded=True)
        )
        row.update(
            Time=short_time(when),
            DateTime=us_datetime(when),
            Description=f"Comm - {c['commType'] or ''}".rstrip(),
            note=c["Note"] or "",
            ClinicNum="0",
        )
        out.append((when, row))
    out.sort(key=lambda pair: pair[0])
    return page_reply(call, [row for _, row in out])


def chart_patient_info(h: Handlers, call: Call) -> Reply:
    """The chart's patient information grid: one Field/Content pair per line."""
    pat = patient_row(h, call)
    plans = query_rows(
        h,
        'SELECT c."CarrierName" FROM patplans pp JOIN inssubs s ON s."InsSubNum" = pp."InsSubNum" '
        'JOIN insplans i ON i."PlanNum" = s."PlanNum" JOIN carriers c ON c."CarrierNum" = i."CarrierNum" '
        'WHERE pp."PatNum" = ? ORDER BY pp."Ordinal"',
        (pat["PatNum"],),
    )
    billing = h.practice.db.execute(
        'SELECT "ItemName" FROM definitions WHERE "DefNum" = ?', (pat["BillingType"],)
    ).fetchone()
    problems = query_rows(
        h,
        'SELECT d."DiseaseName", x."PatNote" FROM diseases x JOIN diseasedefs d '
        'ON d."DiseaseDefNum" = x."DiseaseDefNum" WHERE x."PatNum" = ?',
        (pat["PatNum"],),
    )
    lines = [
        ("Age", age_text(pat["Birthdate"], practice_today(h))),
        ("Billing Type", billing[0] if billing else str(pat["BillingType"] or "")),
        ("Referred From", ""),
        ("Date First Visit", us_date(pat["DateFirstVisit"])),
        ("Prov. (Pri, Sec)", f"{pat['priProvAbbr'] or ''}, {pat['secProvAbbr'] or ''}".strip(", ")),
        ("Pri Ins", plans[0]["CarrierName"] if plans else ""),
        ("Sec Ins", plans[1]["CarrierName"] if len(plans) > 1 else ""),
        ("Payor Types", ""),
        *((f"Problem - {p['DiseaseName']}", p["PatNote"] or "") for p in problems),
        ("Med Urgent", ""),
        ("Medical Summary", ""),
        ("Service Notes", ""),
        ("Medications", ""),
        ("Allergies", ""),
        ("Premedicate", "Y" if str(pat["Premed"]).lower() == "true" else ""),
    ]
    return page_reply(call, [{"Field": f, "Content": c} for f, c in lines])


# -- account and family modules -------------------------------------------------------------------------------
def account_service_date_view(h: Handlers, call: Call) -> Reply:
    """Completed procedures, adjustments and payment splits by service date, with a total per day."""
    pat = patient_row(h, call)
    nums = family_nums(h, pat) if call.query.get("isFamily", "").lower() == "true" else [int(pat["PatNum"])]
    names = dict(
        h.practice.db.execute(f'SELECT "PatNum", "FName" FROM patients WHERE "PatNum" IN {sql_in(nums)}')
    )
    items: list[tuple[str, int, dict[str, Any]]] = []

    def item(
        kind: str,
        key: Any,
        typ: str,
        day: str,
        pat_num: int,
        ref: str,
        charge: float,
        credit: float,
        prov: str,
    ) -> None:
        items.append(
            (
                str(day)[:10],
                len(items),
                {
                    "ObjectType": kind,
                    "PrimaryKey": str(key),
                    "Type": typ,
                    "ServiceDate": str(day)[:10] if kind == "Procedure" else "",
                    "TransDate": "" if kind == "Procedure" else str(day)[:10],
                    "Patient": names.get(pat_num, ""),
                    "PatNum": str(pat_num),
                    "Reference": ref,
                    "Charge": _money(charge),
                    "Credit": _money(credit),
                    "Provider": prov,
                    "InsBal": "",
                    "AcctBal": "",
                },
            )
        )

    for p in query_rows(
        h, f'SELECT * FROM procedurelogs WHERE "ProcStatus" = \'C\' AND "PatNum" IN {sql_in(nums)}'
    ):
        ref = f"{p['procCode'] or ''}:{'#' + p['ToothNum'] if p['ToothNum'] else ''}{p['descript'] or ''}"
        item(
            "Procedure",
            p["ProcNum"],
            "Proc",
            p["ProcDate"],
            int(p["PatNum"]),
            ref,
            float(p["ProcFee"] or 0),
            0.0,
            p["provAbbr"] or "",
        )
    for a in query_rows(h, f'SELECT * FROM adjustments WHERE "PatNum" IN {sql_in(nums)}'):
        amt = float(a["AdjAmt"] or 0)
        item(
            "Adjustment",
            a["AdjNum"],
            "Adj",
            a["AdjDate"],
            int(a["PatNum"]),
            f"Adj- {a['adjType'] or ''}",
            max(amt, 0.0),
            max(-amt, 0.0),
            "",
        )
    for s in query_rows(h, f'SELECT * FROM paysplits WHERE "PatNum" IN {sql_in(nums)}'):
        item(
            "PaySplit",
            s["SplitNum"],
            "Pay",
            s["DatePay"],
            int(s["PatNum"]),
            "Payment",
            0.0,
            float(s["SplitAmt"] or 0),
            "",
        )
    items.sort(key=lambda t: (t[0], t[1]))
    out: list[dict[str, Any]] = []
    balance = 0.0
    by_day: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for day, _, row in items:
        by_day[day].append(row)
    for day, rows in by_day.items():
        charge = sum(float(r["Charge"]) for r in rows)
        credit = sum(float(r["Credit"]) for r in rows)
        balance += charge - credit
        for r in rows:
            if r["ObjectType"] == "Procedure":
                r.update(InsBal="0.00", AcctBal=_money(balance))
        out.extend(rows)
        total = {k: "" for k in rows[0]}
        total.update(
            Type="Day Total",
            ServiceDate=day,
            Reference="Total for Date",
            Charge=_money(charge),
            Credit=_money(credit),
            InsBal="0.00",
            AcctBal=_money(balance),
        )
        out.append(total)
    return page_reply(call, out)


def family_insurance(h: Handlers, call: Call) -> Reply:
    """The patient's insurance plans (one row per PatPlan, by ordinal) as the family module shows them."""
    pat = patient_row(h, call)
    rows = query_rows(
        h,
        'SELECT pp."PatNum", pp."InsSubNum", s."Subscriber", sub."FName" || \' \' || sub."LName" AS subscriber, '
        's."SubscriberID", s."SubscNote", pp."PatPlanNum", pp."Ordinal", pp."IsPending", pp."Relationship", '
        'pp."PatID", i."CarrierNum", c."CarrierName", i."PlanNum", i."GroupName", i."GroupNum", i."PlanNote", '
        'i."FeeSched", coalesce(f."Description", \'\') AS feeSchedule, i."PlanType", i."CopayFeeSched", '
        'i."EmployerNum", coalesce(e."EmpName", \'\') AS employer, i."IsMedical" '
        'FROM patplans pp JOIN inssubs s ON s."InsSubNum" = pp."InsSubNum" '
        'JOIN insplans i ON i."PlanNum" = s."PlanNum" LEFT JOIN carriers c ON c."CarrierNum" = i."CarrierNum" '
        'LEFT JOIN patients sub ON sub."PatNum" = s."Subscriber" '
        'LEFT JOIN feescheds f ON f."FeeSchedNum" = i."FeeSched" '
        'LEFT JOIN employers e ON e."EmployerNum" = i."EmployerNum" '
        'WHERE pp."PatNum" = ? ORDER BY pp."Ordinal"',
        (pat["PatNum"],),
    )
    ordinals = {1: "Primary", 2: "Secondary", 3: "Tertiary", 4: "Quaternary"}
    plan_types = {"": "Category Percentage", "p": "PPO Percentage", "f": "Flat Copay", "c": "Capitation"}
    order = [f.name for f in call.op.response_fields]
    out = []
    for r in rows:
        r["ordinal"] = ordinals.get(int(r["Ordinal"] or 0), "")
        r["planType"] = plan_types.get(str(r["PlanType"] or ""), str(r["PlanType"] or ""))
        r["CarrierName"] = r["CarrierName"] or ""
        r["subscriber"] = r["subscriber"] or ""
        out.append({name: r.get(name, "") for name in order})
    return page_reply(call, out)


VIEWS: dict[tuple[str, str], ActionFn] = {
    ("chartmodules", "ProgNotes"): chart_prog_notes,
    ("chartmodules", "PatientInfo"): chart_patient_info,
    ("accountmodules", "ServiceDateView"): account_service_date_view,
    ("familymodules", "Insurance"): family_insurance,
}
