"""The documented rules of the emulator's writes and searches (issue 22's defects, each with its test)."""

from __future__ import annotations

import pytest
from conftest import headers

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]

#: A day no seeded schedule reaches (seeded schedules span ~20 weeks around the practice's "now").
FAR_DAY = "2099-03-02"


def _one(emu, sql: str, *args):
    row = emu.db.execute(sql, args).fetchone()
    assert row is not None, sql
    return row[0] if len(row) == 1 else row


def _schedule(emu, day: str, prov: int, op: int, start: str = "08:00:00", stop: str = "17:00:00") -> None:
    db = emu.db
    num = _one(emu, 'SELECT coalesce(max("ScheduleNum"), 0) + 1 FROM schedules')
    db.execute(
        'INSERT INTO schedules ("ScheduleNum", "SchedDate", "StartTime", "StopTime", "SchedType", "ProvNum") '
        "VALUES (?, ?, ?, ?, 'Provider', ?)",
        (num, day, start, stop, str(prov)),
    )
    db.execute('INSERT INTO scheduleops ("ScheduleNum", "OperatoryNum") VALUES (?, ?)', (num, op))
    db.commit()


async def _book(emu, client, when: str, prov: int, op: int, pattern: str) -> None:
    r = await client.post(
        emu.endpoints["local"] + "/appointments",
        json={"PatNum": 1, "AptDateTime": when, "ProvNum": prov, "Op": op, "Pattern": pattern},
        headers=headers(),
    )
    assert r.status_code == 201, r.text


async def _slots(emu, client, **params):
    return await client.get(emu.endpoints["local"] + "/appointments/Slots", params=params, headers=headers())


def _spans(rows) -> list[tuple[str, str]]:
    return [(s["DateTimeStart"][11:16], s["DateTimeEnd"][11:16]) for s in rows]


# -- slots (defects 1-3) --------------------------------------------------------------------------------------
async def test_slots_are_entire_open_stretches_and_length_leaves_out_shorter_ones(emu, client):
    prov, op, other_op = 1, 1, 2
    _schedule(emu, FAR_DAY, prov, op)
    await _book(emu, client, f"{FAR_DAY} 10:00:00", prov, op, "X" * 6)  # 10:00-10:30 in this operatory
    await _book(emu, client, f"{FAR_DAY} 13:00:00", prov, other_op, "X" * 12)  # the provider, elsewhere
    r = await _slots(emu, client, date=FAR_DAY, ProvNum=prov, OpNum=op)
    assert r.status_code == 200, r.text
    assert _spans(r.json()) == [("08:00", "10:00"), ("10:30", "13:00"), ("14:00", "17:00")]
    assert {(s["ProvNum"], s["OpNum"]) for s in r.json()} == {(prov, op)}
    r = await _slots(emu, client, date=FAR_DAY, ProvNum=prov, OpNum=op, lengthMinutes=150)
    assert _spans(r.json()) == [("10:30", "13:00"), ("14:00", "17:00")]
    r = await _slots(emu, client, date=FAR_DAY, ProvNum=prov, OpNum=op, lengthMinutes=100_000)
    assert r.status_code == 200 and r.json() == []


@pytest.mark.parametrize("length", ["-1", "-1347595266974127"])
async def test_a_negative_length_is_400_at_once(emu, client, length):
    day = _one(emu, 'SELECT "SchedDate" FROM schedules WHERE "SchedType" = \'Provider\' ORDER BY 1 LIMIT 1')
    r = await _slots(emu, client, date=day, ProvNum=1, OpNum=1, lengthMinutes=length)
    assert r.status_code == 400 and r.text == "lengthMinutes must not be negative."


async def test_far_dates_and_huge_lengths_answer_at_once(emu, client):
    r = await _slots(emu, client, dateStart="0001-01-01", dateEnd="9999-12-31", lengthMinutes=str(2**62))
    assert r.status_code == 200 and r.json() == []
    r = await _slots(emu, client, dateStart="2030-02-01", dateEnd="2030-01-01")
    assert r.status_code == 400 and "dateEnd" in r.text
    r = await _slots(emu, client, date="2024-13-01")
    assert r.status_code == 400 and "not a valid date" in r.text


async def test_web_sched_slots_come_in_half_hours(emu, client):
    day = _one(
        emu, 'SELECT "SchedDate" FROM schedules WHERE "SchedType" = \'Provider\' ORDER BY 1 DESC LIMIT 1'
    )
    r = await client.get(
        emu.endpoints["local"] + "/appointments/SlotsWebSched", params={"date": day}, headers=headers()
    )
    assert r.status_code == 200 and r.json()
    for s in r.json():
        h0, m0 = int(s["DateTimeStart"][11:13]), int(s["DateTimeStart"][14:16])
        h1, m1 = int(s["DateTimeEnd"][11:13]), int(s["DateTimeEnd"][14:16])
        assert (h1 * 60 + m1) - (h0 * 60 + m0) == 30


# -- payments Refund (defect 4) -------------------------------------------------------------------------------
async def test_refund_reverses_the_given_payment(emu, client):
    base = emu.endpoints["local"]
    pay = _one(
        emu,
        'SELECT p."PayNum", p."PatNum", p."PayAmt" FROM payments p WHERE CAST(p."PayAmt" AS REAL) > 0 AND NOT '
        'EXISTS (SELECT 1 FROM paysplits s WHERE s."PayNum" = p."PayNum" AND (s."PayPlanNum" != 0 OR '
        's."SplitAmt" < 0)) ORDER BY 1 LIMIT 1',
    )
    splits = _one(emu, 'SELECT count(*) FROM paysplits WHERE "PayNum" = ?', pay[0])
    r = await client.post(base + "/payments/Refund", json={"PayNum": pay[0]}, headers=headers())
    assert r.status_code == 201, r.text
    refund = r.json()
    assert refund["PayNum"] != pay[0] and refund["PatNum"] == pay[1]
    assert float(refund["PayAmt"]) == -float(pay[2])
    assert "location" not in r.headers  # Payments have no GET by key to point at
    reversed_splits = emu.db.execute(
        'SELECT "SplitAmt" FROM paysplits WHERE "PayNum" = ?', (refund["PayNum"],)
    ).fetchall()
    assert len(reversed_splits) == splits and all(float(a) <= 0 for (a,) in reversed_splits)
    r = await client.post(base + "/payments/Refund", json={"PayNum": refund["PayNum"]}, headers=headers())
    assert r.status_code == 400 and "cannot be refunded" in r.text


@pytest.mark.parametrize(
    ("body", "status", "text"),
    [
        ({"PayNum": 99999}, 404, "Payment 99999 was not found."),
        ({}, 400, "PayNum is required."),
        (None, 400, "The request body must be a JSON object."),
    ],
)
async def test_refund_of_nothing_is_refused(emu, client, body, status, text):
    before = _one(emu, "SELECT count(*) FROM payments")
    r = await client.post(
        emu.endpoints["local"] + "/payments/Refund",
        content=b"null" if body is None else None,
        json=body,
        headers=headers(),
    )
    assert (r.status_code, r.text) == (status, text)
    assert _one(emu, "SELECT count(*) FROM payments") == before


async def test_a_payment_on_a_payment_plan_is_not_refunded(emu, client):
    pay = _one(emu, 'SELECT "PayNum" FROM payments ORDER BY 1 DESC LIMIT 1')
    emu.db.execute(
        'INSERT INTO paysplits ("PayNum", "PatNum", "SplitAmt", "PayPlanNum") VALUES (?, 1, 5.0, 1)', (pay,)
    )
    emu.db.commit()
    r = await client.post(
        emu.endpoints["local"] + "/payments/Refund", json={"PayNum": pay}, headers=headers()
    )
    assert r.status_code == 400 and "payment plan" in r.text


# -- claims and procedures DELETE (defects 5, 6) --------------------------------------------------------------
async def test_a_received_claim_is_not_deleted(emu, client):
    num = _one(emu, 'SELECT "ClaimNum" FROM claims WHERE "ClaimStatus" = \'R\' LIMIT 1')
    r = await client.delete(emu.endpoints["local"] + f"/claims/{num}", headers=headers())
    assert r.status_code == 400 and "Received" in r.text
    assert _one(emu, 'SELECT count(*) FROM claims WHERE "ClaimNum" = ?', num) == 1


async def test_an_unsent_claim_is_deleted_and_its_procedures_become_estimates(emu, client):
    num = _one(
        emu,
        'SELECT "ClaimNum" FROM claims c WHERE "ClaimStatus" = \'U\' AND NOT EXISTS (SELECT 1 FROM claimprocs p '
        'WHERE p."ClaimNum" = c."ClaimNum" AND p."ClaimPaymentNum" != 0) LIMIT 1',
    )
    r = await client.delete(emu.endpoints["local"] + f"/claims/{num}", headers=headers())
    assert r.status_code == 200, r.text
    assert _one(emu, 'SELECT count(*) FROM claims WHERE "ClaimNum" = ?', num) == 0
    assert _one(emu, 'SELECT count(*) FROM claimprocs WHERE "ClaimNum" = ?', num) == 0


@pytest.mark.parametrize("status", ["EO", "EC", "R", "Cn", "D"])
async def test_only_tp_tpi_and_c_procedures_are_deleted(emu, client, status):
    num = _one(emu, 'SELECT "ProcNum" FROM procedurelogs WHERE "ProcStatus" = ? LIMIT 1', status)
    r = await client.delete(emu.endpoints["local"] + f"/procedurelogs/{num}", headers=headers())
    assert r.status_code == 400 and "TP, TPi or C" in r.text
    assert _one(emu, 'SELECT count(*) FROM procedurelogs WHERE "ProcNum" = ?', num) == 1


async def test_a_procedure_with_a_payment_split_is_not_deleted(emu, client):
    num = _one(
        emu,
        'SELECT p."ProcNum" FROM procedurelogs p JOIN paysplits s ON s."ProcNum" = p."ProcNum" '
        'WHERE p."ProcStatus" = \'C\' AND NOT EXISTS (SELECT 1 FROM claimprocs c WHERE c."ProcNum" = p."ProcNum"'
        ' AND c."ClaimNum" != 0) LIMIT 1',
    )
    r = await client.delete(emu.endpoints["local"] + f"/procedurelogs/{num}", headers=headers())
    assert r.status_code == 400 and "patient payment" in r.text


async def test_a_free_treatment_planned_procedure_is_deleted(emu, client):
    num = _one(
        emu,
        'SELECT "ProcNum" FROM procedurelogs p WHERE "ProcStatus" = \'TP\' AND NOT EXISTS (SELECT 1 FROM claimprocs c'
        ' WHERE c."ProcNum" = p."ProcNum" AND c."ClaimNum" != 0) AND NOT EXISTS (SELECT 1 FROM paysplits s WHERE '
        's."ProcNum" = p."ProcNum") AND NOT EXISTS (SELECT 1 FROM adjustments a WHERE a."ProcNum" = p."ProcNum") '
        "ORDER BY 1 DESC LIMIT 1",
    )
    r = await client.delete(emu.endpoints["local"] + f"/procedurelogs/{num}", headers=headers())
    assert r.status_code == 200, r.text
    assert _one(emu, 'SELECT count(*) FROM procedurelogs WHERE "ProcNum" = ?', num) == 0


# -- group notes (defect 7) -----------------------------------------------------------------------------------
async def test_group_notes_need_a_grp_procedure(emu, client):
    base = emu.endpoints["local"]
    plain_proc, pat = _one(
        emu,
        'SELECT p."ProcNum", p."PatNum" FROM procedurelogs p JOIN procedurecodes c ON c."CodeNum" = p."CodeNum" '
        "WHERE c.\"ProcCode\" = 'D0120' LIMIT 1",
    )
    r = await client.put(
        base + f"/procedurelogs/{plain_proc}/GroupNote", json={"PatNum": pat, "Note": "x"}, headers=headers()
    )
    assert r.status_code == 400 and "~GRP~" in r.text
    r = await client.delete(base + f"/procedurelogs/{plain_proc}/GroupNote", headers=headers())
    assert r.status_code == 400 and "~GRP~" in r.text
    assert _one(emu, 'SELECT count(*) FROM procedurelogs WHERE "ProcNum" = ?', plain_proc) == 1


async def test_a_group_note_is_made_updated_and_deleted(emu, client):
    base = emu.endpoints["local"]
    pat, nums = _one(
        emu,
        'SELECT "PatNum", group_concat("ProcNum") FROM procedurelogs WHERE "ProcStatus" = \'C\' '
        'GROUP BY "PatNum", "ProcDate", "ClinicNum", "ProvNum" HAVING count(*) > 1 ORDER BY 1 DESC LIMIT 1',
    )
    members = sorted(int(n) for n in nums.split(","))[:2]
    r = await client.post(
        base + "/procedurelogs/GroupNote",
        json={"PatNum": pat, "ProcNums": [*members, members[0]], "Note": "Exam."},  # a repeat is ignored
        headers=headers(),
    )
    assert r.status_code == 201, r.text
    made = r.json()
    assert made["ProcNums"] == members and made["Note"] == "Exam." and made["ProcNum"] not in members
    group = made["ProcNum"]
    code = _one(
        emu,
        'SELECT c."ProcCode" FROM procedurelogs p JOIN procedurecodes c ON c."CodeNum" = p."CodeNum" '
        'WHERE p."ProcNum" = ?',
        group,
    )
    assert code == "~GRP~"
    r = await client.get(base + "/procedurelogs/GroupNotes", params={"PatNum": pat}, headers=headers())
    listed = [g for g in r.json() if g["ProcNum"] == group]
    assert listed == [{**made, "isSigned": "False"}]
    r = await client.put(
        base + f"/procedurelogs/{group}/GroupNote",
        json={"PatNum": pat, "Note": " Later.", "doAppendNote": "true"},
        headers=headers(),
    )
    assert r.status_code == 200 and r.json()["Note"] == "Exam. Later." and r.json()["ProcNum"] == group
    r = await client.delete(base + f"/procedurelogs/{group}/GroupNote", headers=headers())
    assert r.status_code == 200
    assert _one(emu, 'SELECT count(*) FROM procedurelogs WHERE "ProcNum" = ?', group) == 0


async def test_a_group_note_over_different_days_is_refused(emu, client):
    pat, first, second = _one(
        emu,
        'SELECT a."PatNum", a."ProcNum", b."ProcNum" FROM procedurelogs a JOIN procedurelogs b ON b."PatNum" = '
        'a."PatNum" AND b."ProcDate" != a."ProcDate" WHERE a."ProcStatus" = \'C\' AND b."ProcStatus" = \'C\' LIMIT 1',
    )
    r = await client.post(
        emu.endpoints["local"] + "/procedurelogs/GroupNote",
        json={"PatNum": pat, "ProcNums": [first, second], "Note": "x"},
        headers=headers(),
    )
    assert r.status_code == 400 and "same date" in r.text


# -- definitions with a unique name ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("segment", "field", "label"),
    [("allergydefs", "Description", "An AllergyDef"), ("diseasedefs", "DiseaseName", "A DiseaseDef")],
)
async def test_defs_need_a_unique_name(emu, client, segment, field, label):
    base = emu.endpoints["local"]
    r = await client.post(base + f"/{segment}", json={}, headers=headers())
    assert (r.status_code, r.text) == (400, f"{field} is required.")
    r = await client.post(base + f"/{segment}", json={field: "Emulator Test Name"}, headers=headers())
    assert r.status_code == 201, r.text
    r = await client.post(base + f"/{segment}", json={field: "emulator test name"}, headers=headers())
    assert (r.status_code, r.text) == (400, f"{label} with that name already exists.")


# -- bodies and methods (defects 8, 9) ------------------------------------------------------------------------
@pytest.mark.parametrize("raw", [b"null", b"[]", b"3", b'"text"'])
async def test_a_body_that_is_not_an_object_is_400(emu, client, raw):
    r = await client.post(emu.endpoints["local"] + "/commlogs", content=raw, headers=headers())
    assert (r.status_code, r.text) == (400, "The request body must be a JSON object.")


@pytest.mark.parametrize(
    ("path", "allow"),
    [("/patients", "GET, POST"), ("/patients/1", "GET, PUT"), ("/procedurelogs/1", "GET, PUT, DELETE")],
)
@pytest.mark.parametrize("method", ["OPTIONS", "TRACE"])
async def test_options_and_trace_are_405_with_the_documented_methods(emu, client, method, path, allow):
    r = await client.request(method, emu.endpoints["local"] + path, headers=headers())
    assert r.status_code == 405 and r.headers["allow"] == allow


async def test_options_on_an_unknown_path_is_404(emu, client):
    r = await client.request("OPTIONS", emu.endpoints["local"] + "/nothing/here", headers=headers())
    assert r.status_code == 404 and "allow" not in r.headers


# -- appointments Break ---------------------------------------------------------------------------------------
async def test_a_missed_appointment_adds_its_procedure(emu, client):
    base = emu.endpoints["local"]
    apt, pat = emu.db.execute(
        'SELECT "AptNum", "PatNum" FROM appointments WHERE "AptStatus" = \'Scheduled\' ORDER BY 1 DESC LIMIT 1'
    ).fetchone()
    missed = 'SELECT count(*) FROM procedurelogs p JOIN procedurecodes c ON c."CodeNum" = p."CodeNum" WHERE p."PatNum" = ? AND c."ProcCode" = \'D9986\''
    before = _one(emu, missed, pat)
    r = await client.put(
        base + f"/appointments/{apt}/Break",
        json={"sendToUnscheduledList": "false", "breakType": "Late"},
        headers=headers(),
    )
    assert (r.status_code, r.text) == (400, "breakType must be Missed or Cancelled.")
    r = await client.put(
        base + f"/appointments/{apt}/Break",
        json={"sendToUnscheduledList": "false", "breakType": "Missed"},
        headers=headers(),
    )
    assert r.status_code == 200, r.text
    assert _one(emu, missed, pat) == before + 1
    assert _one(emu, 'SELECT "AptStatus" FROM appointments WHERE "AptNum" = ?', apt) == "Broken"
