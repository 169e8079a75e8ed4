"""Computed GET actions answer from the practice's own rows (not `[]`), and the row fixes the docs call for."""

from __future__ import annotations

from datetime import date

import pytest
from conftest import headers
from docs_conformance import rich_patient

from odapi_async.emulator._api.report_views import age_balance

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]


#: Patient plans whose subscriber, plan and carrier all exist (other tests may delete rows of the shared emulator).
_FULL_PLANS = (
    'FROM patplans pp JOIN inssubs s ON s."InsSubNum" = pp."InsSubNum" JOIN insplans i ON i."PlanNum" = s."PlanNum" '
    'JOIN carriers c ON c."CarrierNum" = i."CarrierNum"'
)


def _count(emu, sql: str, *args) -> int:
    return int(emu.db.execute(sql, args).fetchone()[0])


async def _get(emu, client, path: str, **params):
    r = await client.get(emu.endpoints["local"] + path, params=params, headers=headers("cust-ent"))
    assert r.status_code == 200, (path, r.status_code, r.text)
    return r.json()


async def test_progress_notes_list_every_appointment_procedure_and_commlog(emu, client):
    pat = rich_patient(emu.db)
    rows = await _get(emu, client, f"/chartmodules/{pat}/ProgNotes")
    kinds = [r["ObjectType"] for r in rows]
    dated = 'SELECT count(*) FROM appointments WHERE "PatNum" = ? AND "AptDateTime" > \'1880\''
    assert kinds.count("Appointment") == _count(emu, dated, pat)
    assert kinds.count("Procedure") == _count(
        emu, 'SELECT count(*) FROM procedurelogs WHERE "PatNum" = ?', pat
    )
    assert kinds.count("Commlog") == _count(emu, 'SELECT count(*) FROM commlogs WHERE "PatNum" = ?', pat)
    assert all(isinstance(v, str) for r in rows for v in r.values())
    proc = next(r for r in rows if r["ObjectType"] == "Procedure")
    fee = emu.db.execute(
        'SELECT "ProcFee" FROM procedurelogs WHERE "ProcNum" = ?', (int(proc["PrimaryKey"]),)
    )
    assert proc["Amount"] == f"{float(fee.fetchone()[0]):.2f}"
    assert proc["Date"][2] == "/" and proc["DateTime"].endswith((" AM", " PM"))


async def test_patient_info_shows_age_and_insurance(emu, client):
    pat = emu.db.execute(
        f'SELECT pp."PatNum" {_FULL_PLANS} WHERE pp."Ordinal" = 1 ORDER BY 1 DESC LIMIT 1'
    ).fetchone()[0]
    info = {r["Field"]: r["Content"] for r in await _get(emu, client, f"/chartmodules/{pat}/PatientInfo")}
    assert info["Age"].isdigit()
    carrier = emu.db.execute(
        'SELECT c."CarrierName" FROM patplans pp JOIN inssubs s USING ("InsSubNum") JOIN insplans i '
        'ON i."PlanNum" = s."PlanNum" JOIN carriers c ON c."CarrierNum" = i."CarrierNum" '
        'WHERE pp."PatNum" = ? AND pp."Ordinal" = 1',
        (pat,),
    ).fetchone()[0]
    assert info["Pri Ins"] == carrier


async def test_service_date_view_totals_add_up(emu, client):
    pat = rich_patient(emu.db)
    rows = await _get(emu, client, f"/accountmodules/{pat}/ServiceDateView", isFamily="false")
    totals = [r for r in rows if r["Type"] == "Day Total"]
    procs = [r for r in rows if r["ObjectType"] == "Procedure"]
    fees = emu.db.execute(
        'SELECT coalesce(sum("ProcFee"), 0) FROM procedurelogs WHERE "PatNum" = ? AND "ProcStatus" = \'C\'',
        (pat,),
    ).fetchone()[0]
    assert len(procs) == _count(
        emu, 'SELECT count(*) FROM procedurelogs WHERE "PatNum" = ? AND "ProcStatus" = \'C\'', pat
    )
    assert sum(float(r["Charge"]) for r in procs) == pytest.approx(fees)
    charged = sum(float(r["Charge"]) for r in totals) - sum(float(r["Credit"]) for r in totals)
    assert float(totals[-1]["AcctBal"]) == pytest.approx(charged)


async def test_family_insurance_lists_the_patients_plans(emu, client):
    pat = emu.db.execute(f'SELECT pp."PatNum" {_FULL_PLANS} ORDER BY 1 DESC LIMIT 1').fetchone()[0]
    rows = await _get(emu, client, f"/familymodules/{pat}/Insurance")
    assert len(rows) == _count(emu, f'SELECT count(*) {_FULL_PLANS} WHERE pp."PatNum" = ?', pat) > 0
    assert rows[0]["ordinal"] == "Primary" and rows[0]["CarrierName"]


async def test_aging_spreads_a_balance_over_the_newest_charges():
    today = date(2026, 3, 31)
    charges = [("2026-03-20", 100.0), ("2026-02-15", 50.0), ("2025-10-01", 500.0)]
    spread = age_balance(120.0, charges, today)
    assert spread == {"Bal_0_30": 100.0, "Bal_31_60": 20.0, "Bal_61_90": 0.0, "BalOver90": 0.0}
    assert (
        age_balance(700.0, charges, today)["BalOver90"] == 550.0
    )  # 500 over 90 days and 50 nothing explains
    assert age_balance(-30.0, charges, today)["Bal_0_30"] == -30.0  # a credit stays current


async def test_aging_report_has_one_row_per_guarantor_with_a_balance(emu, client):
    rows = await _get(emu, client, "/reports/Aging")
    owing = _count(emu, 'SELECT count(*) FROM patients WHERE "Guarantor" = "PatNum" AND "BalTotal" != 0')
    assert len(rows) == min(owing, 1000) and owing > 0
    for r in rows:
        buckets = r["Bal_0_30"] + r["Bal_31_60"] + r["Bal_61_90"] + r["BalOver90"]
        assert buckets == pytest.approx(r["BalTotal"])
        assert r["PatientPortion"] == pytest.approx(r["BalTotal"] - r["InsPayEst"] - r["InsWoEst"])


async def test_finance_charges_sum_the_finance_charge_adjustments(emu, client):
    rows = await _get(emu, client, "/reports/FinanceCharges")
    kind = emu.db.execute(
        'SELECT "ValueString" FROM preferences WHERE "PrefName" = \'FinanceChargeAdjustmentType\''
    ).fetchone()[0]
    total = emu.db.execute(
        'SELECT sum("AdjAmt") FROM adjustments WHERE "AdjType" = ?', (int(kind),)
    ).fetchone()[0]
    assert rows and sum(r["AdjAmt"] for r in rows) == pytest.approx(total)


async def test_insurance_history_has_one_row_per_category(emu, client):
    pat, sub = emu.db.execute(
        f'SELECT pp."PatNum", pp."InsSubNum" {_FULL_PLANS} ORDER BY 1 DESC LIMIT 1'
    ).fetchone()
    rows = await _get(emu, client, "/procedurelogs/InsuranceHistory", PatNum=pat, InsSubNum=sub)
    assert len(rows) == 10 and len({r["insHistPrefName"] for r in rows}) == 10
    for r in rows:
        if r["ProcNum"]:
            day = emu.db.execute('SELECT "ProcDate" FROM procedurelogs WHERE "ProcNum" = ?', (r["ProcNum"],))
            assert r["procDate"] == day.fetchone()[0][:10]
        else:
            assert r["procDate"] in ("No History", "Not Set")
    assert {r["procDate"] for r in rows} & {"Not Set"}


async def test_group_notes_group_procedures_of_one_day(emu, client):
    pat = rich_patient(emu.db)
    rows = await _get(emu, client, "/procedurelogs/GroupNotes", PatNum=pat)
    assert rows
    for r in rows:
        days = {
            emu.db.execute('SELECT "ProcDate" FROM procedurelogs WHERE "ProcNum" = ?', (n,)).fetchone()[0]
            for n in [r["ProcNum"], *r["ProcNums"]]
        }
        assert len(days) == 1 and r["isSigned"] in ("True", "False")
    everyone = [await _get(emu, client, "/procedurelogs/GroupNotes", PatNum=p) for p in range(1, 60)]
    notes = [r for rows in everyone for r in rows]
    assert any(r["Note"] for r in notes) and {r["isSigned"] for r in notes} == {"True", "False"}


async def test_recall_list_shows_recalls_due_in_the_range(emu, client):
    rows = await _get(emu, client, "/recalls/List", DateStart="2000-01-01", DateEnd="2100-01-01")
    due = _count(
        emu,
        'SELECT count(*) FROM recalls r JOIN patients p USING ("PatNum") '
        "WHERE r.\"IsDisabled\" != 'true' AND p.\"PatStatus\" = 'Patient' AND r.\"DateDue\" >= '2000-01-01'",
    )
    assert len(rows) == min(due, 1000) and due > 0
    assert all(r["DueDate"].count("/") == 2 for r in rows)


async def test_websched_appointments_are_marked(emu, client):
    base = emu.endpoints["local"]
    h = headers("cust-ent")
    day = emu.db.execute(
        'SELECT "SchedDate" FROM schedules WHERE "SchedType" = \'Provider\' ORDER BY 1 DESC LIMIT 1'
    ).fetchone()[0]
    slot = (await _get(emu, client, "/appointments/Slots", date=day))[0]
    appt_type = emu.db.execute('SELECT "DefNum" FROM definitions ORDER BY 1 LIMIT 1').fetchone()[0]
    body = {
        "PatNum": 1,
        "DateTimeStart": slot["DateTimeStart"],
        "DateTimeEnd": slot["DateTimeEnd"],
        "ProvNum": slot["ProvNum"],
        "OpNum": slot["OpNum"],
        "defNumApptType": appt_type,
    }
    r = await client.post(base + "/appointments/WebSched", json=body, headers=h)
    assert r.status_code in (200, 201), r.text
    made = r.json()["AptNum"]
    rows = await _get(emu, client, "/appointments/WebSched", date=slot["DateTimeStart"][:10])
    kinds = {row["AptNum"]: row["eServiceLogType"] for row in rows}
    assert kinds[made] in ("NewPat", "ExistingPat")
    assert set(kinds.values()) - {"NewPat", "ExistingPat"} <= {"None"}
    assert all(row["IsHygiene"] in ("True", "False") for row in rows)


async def test_patient_notes_exist_for_every_patient(emu, client):
    pat = emu.db.execute(
        'SELECT "PatNum" FROM patients WHERE "PatNum" NOT IN (SELECT "PatNum" FROM patientnotes) LIMIT 1'
    ).fetchone()[0]
    note = await _get(emu, client, f"/patientnotes/{pat}")
    assert note["PatNum"] == pat and note["Medical"] == ""
    r = await client.put(
        emu.endpoints["local"] + f"/patientnotes/{pat}",
        json={"Medical": "Diabetes."},
        headers=headers("cust-ent"),
    )
    assert r.status_code == 200, r.text
    assert (await _get(emu, client, f"/patientnotes/{pat}"))["Medical"] == "Diabetes."
    r = await client.get(emu.endpoints["local"] + "/patientnotes/99999999", headers=headers("cust-ent"))
    assert r.status_code == 404


async def test_rows_follow_the_documented_get_examples(emu, client):
    users = await _get(emu, client, "/userods")
    assert users and not {"Password", "UserGroupNum"} & set(users[0])
    pats = await _get(emu, client, "/patients", Limit=2)
    assert len(pats[0]) == 25 and "Gender" not in pats[0]
    assert len(await _get(emu, client, "/patients/1")) == 48
    procs = await _get(emu, client, "/procedurelogs", Limit=5)
    assert all(isinstance(p[k], int) for p in procs for k in ("AptNum", "PlannedAptNum", "ClinicNum"))
    assert isinstance(procs[0]["ProcFee"], str)  # documented as text
    fees = await _get(emu, client, "/fees", Limit=5)
    assert all(isinstance(f["Amount"], float) for f in fees)
    scheds = await _get(emu, client, "/schedules", Limit=5)
    assert all(isinstance(s["ScheduleNum"], str) and s["ScheduleNum"].isdigit() for s in scheds)
    claims = await _get(emu, client, "/claims", Limit=5)
    assert all(c["IsOrtho"] in ("True", "False") for c in claims)
