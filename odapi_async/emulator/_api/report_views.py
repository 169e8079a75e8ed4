"""GET actions that compute reports and lists across the practice: aging, finance charges, insurance history,
group notes, the recall list, appointments made through Web Sched.

Built from the emulator's practice with the documented row shapes; the figures are plausible, not the desktop
program's exact arithmetic (docs/emulator.md, "What it does not model").
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from typing import Any

import msgspec

from odapi_async.emulator._api.handlers import ActionFn, Call, Handlers, Reply
from odapi_async.emulator._api.module_views import (
    age_text,
    family_nums,
    page_reply,
    parse_day,
    patient_row,
    practice_today,
    query_rows,
    sql_in,
    us_date,
)
from odapi_async.emulator._api.rules import made_group_notes
from odapi_async.emulator._practice.db import ApiError

#: Insurance history categories, in the docs' order, with the codes the desktop program suggests for each.
INS_HIST_CODES: tuple[tuple[str, str], ...] = (
    ("InsHistBWCodes", "D0272,D0274"),
    ("InsHistPanoCodes", "D0330"),
    ("InsHistExamCodes", "D0120,D0150"),
    ("InsHistProphyCodes", "D1110,D1120"),
    ("InsHistPerioURCodes", "D4341,D4342"),
    ("InsHistPerioULCodes", ""),  # not set in the emulator's office (the docs' example shows "Not Set")
    ("InsHistPerioLRCodes", "D4341,D4342"),
    ("InsHistPerioLLCodes", "D4341,D4342"),
    ("InsHistPerioMaintCodes", "D4910"),
    ("InsHistDebridementCodes", "D4355"),
)


# -- reports --------------------------------------------------------------------------------------------------
def _bucket(days: int) -> str:
    return (
        "Bal_0_30"
        if days <= 30
        else "Bal_31_60"
        if days <= 60
        else "Bal_61_90"
        if days <= 90
        else "BalOver90"
    )


def age_balance(total: float, charges: list[tuple[str, float]], today: date) -> dict[str, float]:
    """Spread a balance over the newest charges (payments pay the oldest first); the rest is over 90 days."""
    buckets = dict.fromkeys(("Bal_0_30", "Bal_31_60", "Bal_61_90", "BalOver90"), 0.0)
    left = total
    for day, amount in sorted(charges, reverse=True):
        if left <= 0:
            break
        taken = min(left, amount)
        buckets[_bucket((today - (parse_day(day) or today)).days)] += taken
        left -= taken
    buckets["BalOver90" if left > 0 else "Bal_0_30"] += left  # what no charge explains (or a credit)
    return {name: round(value, 2) for name, value in buckets.items()}


def report_aging(h: Handlers, call: Call) -> Reply:
    """Guarantors with a balance, aged by the dates of the family's charges that make it up."""
    today = practice_today(h)
    where = '"Guarantor" = "PatNum" AND "BalTotal" != 0'
    args: list[Any] = []
    if call.query.get("ClinicNum"):
        where += ' AND "ClinicNum" = ?'
        args.append(int(call.query["ClinicNum"]))
    db = h.practice.db
    out = []
    for g in query_rows(h, f'SELECT * FROM patients WHERE {where} ORDER BY "LName", "FName"', args):
        fam = sql_in(family_nums(h, g))
        charges = db.execute(
            f'SELECT "ProcDate", "ProcFee" FROM procedurelogs WHERE "ProcStatus" = \'C\' AND "PatNum" IN {fam} '
            f'UNION ALL SELECT "AdjDate", "AdjAmt" FROM adjustments WHERE "AdjAmt" > 0 AND "PatNum" IN {fam}'
        ).fetchall()
        ins_est = db.execute(
            f'SELECT coalesce(sum("InsPayEst"), 0), coalesce(sum("WriteOffEst"), 0) FROM claimprocs '
            f'WHERE "Status" = \'NotReceived\' AND "PatNum" IN {fam}'
        ).fetchone()
        total = round(float(g["BalTotal"] or 0), 2)
        buckets = age_balance(total, [(str(d)[:10], float(a or 0)) for d, a in charges], today)
        pay_est, wo_est = round(max(float(ins_est[0]), 0), 2), round(max(float(ins_est[1]), 0), 2)
        out.append(
            {
                "PatNum": g["PatNum"],
                "patName": f"{g['LName']}, {g['FName']} ",
                **buckets,
                "BalTotal": total,
                "InsWoEst": wo_est,
                "InsPayEst": pay_est,
                "PatientPortion": round(total - pay_est - wo_est, 2),
            }
        )
    return page_reply(call, out)


def report_finance_charges(h: Handlers, call: Call) -> Reply:
    """Finance-charge adjustments (the type named by the FinanceChargeAdjustmentType preference) in a range."""
    pref = h.practice.db.execute(
        'SELECT "ValueString" FROM preferences WHERE "PrefName" = \'FinanceChargeAdjustmentType\''
    ).fetchone()
    where = ['a."AdjType" = ?']
    args: list[Any] = [int(pref[0]) if pref and str(pref[0]).isdigit() else -1]
    if call.query.get("DateFrom"):
        where.append('a."AdjDate" >= ?')
        args.append(call.query["DateFrom"][:10])
    if call.query.get("DateTo"):
        where.append('a."AdjDate" <= ?')
        args.append(call.query["DateTo"][:10])
    if call.query.get("ProvNums"):
        provs = [int(x) for x in call.query["ProvNums"].split(",") if x.strip().isdigit()]
        where.append(f'a."ProvNum" IN {sql_in(provs or [-1])}')
    rows = query_rows(
        h,
        'SELECT p."PatNum", p."LName", p."FName", p."Preferred", sum(a."AdjAmt") AS amt FROM adjustments a '
        f'JOIN patients p ON p."PatNum" = a."PatNum" WHERE {" AND ".join(where)} '
        'GROUP BY p."PatNum" ORDER BY p."PatNum"',
        args,
    )
    out = [
        {
            "PatNum": r["PatNum"],
            "PatName": f"{r['LName']}, {r['FName']} ",
            "Preferred": r["Preferred"] or "",
            "AdjAmt": round(float(r["amt"] or 0), 2),
        }
        for r in rows
    ]
    return page_reply(call, out)


# -- procedures -----------------------------------------------------------------------------------------------
def insurance_history(h: Handlers, call: Call) -> Reply:
    """One row per insurance-history category: the latest such procedure billed to the plan, or a placeholder."""
    pat = patient_row(h, call, call.query["PatNum"])
    sub = int(call.query["InsSubNum"])
    if not h.practice.db.execute('SELECT 1 FROM inssubs WHERE "InsSubNum" = ?', (sub,)).fetchone():
        raise ApiError(404, f"InsSub {sub} was not found.")
    out = []
    for pref, codes in INS_HIST_CODES:
        code_list = [c for c in codes.split(",") if c]
        if not code_list:
            out.append({"insHistPrefName": pref, "procDate": "Not Set", "ProcNum": 0})
            continue
        marks = ", ".join("?" for _ in code_list)
        found = h.practice.db.execute(
            f'SELECT p."ProcNum", p."ProcDate" FROM procedurelogs p WHERE p."PatNum" = ? '
            f"AND p.\"ProcStatus\" IN ('C', 'EC', 'EO') AND p.\"procCode\" IN ({marks}) "
            'AND (p."ProcStatus" != \'C\' OR EXISTS (SELECT 1 FROM claimprocs cp WHERE cp."ProcNum" = p."ProcNum" '
            'AND cp."InsSubNum" = ?)) ORDER BY p."ProcDate" DESC LIMIT 1',
            (pat["PatNum"], *code_list, sub),
        ).fetchone()
        if found:
            out.append({"insHistPrefName": pref, "procDate": str(found[1])[:10], "ProcNum": int(found[0])})
        else:
            out.append({"insHistPrefName": pref, "procDate": "No History", "ProcNum": 0})
    return page_reply(call, out)


def group_notes(h: Handlers, call: Call) -> Reply:
    """Group notes: the seeded practice's completed procedures sharing a date and provider (the first procedure
    leads; the seed has no ~GRP~ procedures), then the ~GRP~ ones made through the API."""
    if not call.query.get("PatNum"):
        raise ApiError(400, "PatNum is required.")
    pat = patient_row(h, call, call.query["PatNum"])
    groups: dict[tuple[str, int], list[int]] = defaultdict(list)
    for num, day, prov in h.practice.db.execute(
        'SELECT "ProcNum", "ProcDate", "ProvNum" FROM procedurelogs WHERE "PatNum" = ? AND "ProcStatus" = \'C\' '
        'ORDER BY "ProcDate", "ProcNum"',
        (pat["PatNum"],),
    ):
        groups[(str(day)[:10], int(prov))].append(int(num))
    out = []
    for (_, prov), nums in groups.items():
        if len(nums) < 2:
            continue
        note = h.practice.db.execute(
            'SELECT "Note", "isSigned" FROM procnotes WHERE "PatNum" = ? AND "ProcNum" = ? '
            'ORDER BY "EntryDateTime" DESC LIMIT 1',
            (pat["PatNum"], nums[0]),
        ).fetchone()
        signed = str(note[1]).lower() == "true" if note else False
        out.append(
            {
                "PatNum": int(pat["PatNum"]),
                "ProvNum": prov,
                "ProcNum": nums[0],
                "ProcNums": nums[1:],
                "Note": (note[0] if note else "") or "",
                "isSigned": "True" if signed else "False",
            }
        )
    out.extend(made_group_notes(h, int(pat["PatNum"])))  # the ~GRP~ procedures POST GroupNote made
    out.reverse()  # newest first, as the docs' example
    return page_reply(call, out)


# -- recalls --------------------------------------------------------------------------------------------------
def _interval(text: str) -> str:
    """The stored interval (``6m``, ``1y``) in the recall list's form (``6m1d`` style keeps the units given)."""
    return str(text or "")


def recall_list(h: Handlers, call: Call) -> Reply:
    """Recalls due in a range (default: RecallDaysPast before today to RecallDaysFuture after), by due date."""
    today = practice_today(h)
    prefs = dict(h.practice.db.execute('SELECT "PrefName", "ValueString" FROM preferences'))
    past = int(prefs.get("RecallDaysPast") or 365)
    future = int(prefs.get("RecallDaysFuture") or 7)
    start = call.query.get("DateStart", "")[:10] or date.fromordinal(today.toordinal() - past).isoformat()
    end = call.query.get("DateEnd", "")[:10] or date.fromordinal(today.toordinal() + future).isoformat()
    where = ['r."DateDue" BETWEEN ? AND ?', "r.\"IsDisabled\" != 'true'", "p.\"PatStatus\" = 'Patient'"]
    args: list[Any] = [start, end]
    if call.query.get("ProvNum"):
        where.append('p."PriProv" = ?')
        args.append(int(call.query["ProvNum"]))
    if call.query.get("ClinicNum"):
        where.append('p."ClinicNum" = ?')
        args.append(int(call.query["ClinicNum"]))
    if call.query.get("RecallType"):
        where.append('t."Description" = ? COLLATE NOCASE')
        args.append(call.query["RecallType"])
    rows = query_rows(
        h,
        'SELECT r.*, p."LName", p."FName", p."Preferred", p."Birthdate", p."ClinicNum", p."PreferRecallMethod", '
        'p."WirelessPhone", p."HmPhone", p."Email", t."Description" AS type FROM recalls r '
        'JOIN patients p ON p."PatNum" = r."PatNum" LEFT JOIN recalltypes t ON t."RecallTypeNum" = r."RecallTypeNum" '
        f'WHERE {" AND ".join(where)} ORDER BY r."DateDue", r."RecallNum"',
        args,
    )
    out = []
    for r in rows:
        method = str(r["PreferRecallMethod"] or "")
        if method == "TextMessage" and r["WirelessPhone"]:
            contact = f"Text:{r['WirelessPhone']}"
        elif method == "Email" and r["Email"]:
            contact = str(r["Email"])
        else:
            contact = f"Hm:{r['HmPhone']}" if r["HmPhone"] else ""
        preferred = f"'{r['Preferred']}' " if r["Preferred"] else ""
        out.append(
            {
                "DueDate": us_date(r["DateDue"]),
                "PatNum": int(r["PatNum"]),
                "Patient": f"{r['LName']}, {preferred}{r['FName']}",
                "Age": age_text(r["Birthdate"], today),
                "Type": r["type"] or "",
                "Interval": _interval(r["RecallInterval"]),
                "NumRemind": "",
                "LastRemind": "",
                "Contact": contact,
                "Status": r["recallStatus"] or "",
                "ClinicNum": int(r["ClinicNum"] or 0),
                "Note": r["Note"] or "",
            }
        )
    return page_reply(call, out)


# -- appointments made through Web Sched ----------------------------------------------------------------------
#: Side table of the appointments POST /appointments/WebSched made, with their eServiceLogType.
WEB_SCHED_TABLE = "emu_websched"


def mark_web_sched(h: Handlers, apt_num: int, pat_num: int) -> None:
    """Remember that an appointment came through Web Sched (NewPat when the patient had no earlier visit)."""
    db = h.practice.db
    db.execute(f'CREATE TABLE IF NOT EXISTS {WEB_SCHED_TABLE} ("AptNum" INTEGER PRIMARY KEY, "LogType" TEXT)')
    earlier = db.execute(
        'SELECT 1 FROM appointments WHERE "PatNum" = ? AND "AptNum" != ? AND "AptStatus" = \'Complete\' LIMIT 1',
        (pat_num, apt_num),
    ).fetchone()
    db.execute(
        f"INSERT OR REPLACE INTO {WEB_SCHED_TABLE} VALUES (?, ?)",
        (apt_num, "ExistingPat" if earlier else "NewPat"),
    )
    db.commit()


def web_sched_appointments(h: Handlers, call: Call) -> Reply:
    """All appointments (filtered like GET multiple) with eServiceLogType: how Web Sched made them, or "None"."""
    rows = msgspec.json.decode(h.list(call).body)
    db = h.practice.db
    exists = db.execute("SELECT 1 FROM sqlite_master WHERE name = ?", (WEB_SCHED_TABLE,)).fetchone()
    kinds = dict(db.execute(f'SELECT "AptNum", "LogType" FROM {WEB_SCHED_TABLE}')) if exists else {}
    order = [f.name for f in call.op.response_fields]
    out = []
    for row in rows:
        row["eServiceLogType"] = kinds.get(row["AptNum"], "None")
        out.append({name: row[name] for name in order if name in row})
    return Reply(200, msgspec.json.encode(out))


REPORTS: dict[tuple[str, str], ActionFn] = {
    ("reports", "Aging"): report_aging,
    ("reports", "FinanceCharges"): report_finance_charges,
    ("procedurelogs", "GetInsuranceHistory"): insurance_history,
    ("procedurelogs", "GroupNotes"): group_notes,
    ("recalls", "List"): recall_list,
    ("appointments", "GetWebSched"): web_sched_appointments,
}
