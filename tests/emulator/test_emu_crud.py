"""CRUD round trips, actions and ShortQuery over real sockets."""

from __future__ import annotations

import re

import pytest
from conftest import headers

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]

DT = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$")


async def test_patient_round_trip(emu, client):
    base = emu.endpoints["local"]
    r = await client.post(
        base + "/patients",
        json={"LName": "Roundtrip", "FName": "Rita", "Birthdate": "1984-05-06", "Gender": "female"},
        headers=headers(),
    )
    assert r.status_code == 201, r.text
    pat = r.json()
    num = pat["PatNum"]
    assert r.headers["location"] == f"{base}/patients/{num}"
    assert pat["Gender"] == "Female" and pat["Birthdate"] == "1984-05-06"
    assert pat["Guarantor"] == num  # a new patient is their own guarantor
    assert pat["Premed"] == "false" and pat["AdmitDate"] == "0001-01-01"
    r = await client.put(
        base + f"/patients/{num}", json={"City": "Portland", "priProvAbbr": "ignored"}, headers=headers()
    )
    assert r.status_code == 200 and r.json()["City"] == "Portland" and r.json()["LName"] == "Roundtrip"
    r = await client.get(base + f"/patients/{num}", headers=headers())
    assert r.json()["City"] == "Portland"
    r = await client.get(base + "/patients", params={"LName": "Roundtr"}, headers=headers())
    assert [p["PatNum"] for p in r.json()] == [num]


async def test_appointment_round_trip_and_actions(emu, client):
    base = emu.endpoints["local"]
    h = headers()
    r = await client.post(
        base + "/appointments",
        json={"PatNum": 1, "Op": 1, "AptDateTime": "2031-03-04 09:30:00", "Note": "first.", "ProvNum": 1},
        headers=h,
    )
    assert r.status_code == 201, r.text
    apt = r.json()
    num = apt["AptNum"]
    assert apt["AptStatus"] == "Scheduled" and apt["provAbbr"] != ""
    assert DT.match(apt["DateTStamp"]) and "serverDateTime" not in apt  # only GETs carry it (documented)
    r = await client.put(base + f"/appointments/{num}/Note", json={"Note": "second."}, headers=h)
    assert r.status_code == 200
    r = await client.put(base + f"/appointments/{num}", json={"Pattern": "XXXX//"}, headers=h)
    assert r.json()["Note"] == "first.\r\nsecond." and r.json()["Pattern"] == "XXXX//"
    r = await client.put(base + f"/appointments/{num}/Confirm", json={"confirmVal": "Sent"}, headers=h)
    assert r.status_code == 200
    r = await client.get(base + f"/appointments/{num}", headers=h)
    assert r.json()["confirmed"].lower() == "sent"
    r = await client.put(
        base + f"/appointments/{num}/Break", json={"sendToUnscheduledList": "false"}, headers=h
    )
    assert r.status_code == 200
    r = await client.get(base + f"/appointments/{num}", headers=h)
    assert r.json()["AptStatus"] == "Broken"
    r = await client.put(
        base + f"/appointments/{num}/Break", json={"sendToUnscheduledList": "false"}, headers=h
    )
    assert r.status_code == 400  # only scheduled appointments break
    r = await client.get(base + "/appointments", params={"PatNum": 1, "AptStatus": "broken"}, headers=h)
    assert num in [a["AptNum"] for a in r.json()]
    r = await client.put(base + "/appointments/99999999/Note", json={"Note": "x"}, headers=h)
    assert r.status_code == 404


async def test_commlog_round_trip(emu, client):
    base = emu.endpoints["service"]
    h = headers()
    r = await client.post(
        base + "/commlogs",
        json={"PatNum": 2, "Note": "called", "CommDateTime": "2030-01-02 10:00:00"},
        headers=h,
    )
    assert r.status_code == 201, r.text
    log = r.json()
    r = await client.put(base + f"/commlogs/{log['CommlogNum']}", json={"Note": "called back"}, headers=h)
    assert r.status_code == 200 and r.json()["Note"] == "called back"
    r = await client.get(base + "/commlogs", params={"PatNum": 2}, headers=h)
    assert any(c["CommlogNum"] == log["CommlogNum"] for c in r.json())
    r = await client.post(base + "/commlogs", json={"PatNum": 987654321, "Note": "x"}, headers=h)
    assert r.status_code == 404


async def test_procedurelog_round_trip_and_delete(emu, client):
    base = emu.endpoints["local"]
    h = headers()
    r = await client.post(
        base + "/procedurelogs",
        json={
            "PatNum": 3,
            "ProcDate": "2030-02-03",
            "ProcStatus": "TP",
            "CodeNum": 1,
            "ProcFee": 123.5,
            "ToothNum": "3",
            "procCode": "x",
        },
        headers=h,
    )
    assert r.status_code == 201, r.text
    proc = r.json()
    assert proc["ProcFee"] == "123.50"  # a numeric_string field travels as text
    assert proc["procCode"] != ""
    num = proc["ProcNum"]
    r = await client.put(base + f"/procedurelogs/{num}", json={"ProcStatus": "C"}, headers=h)
    assert r.json()["ProcStatus"] == "C"
    r = await client.delete(base + f"/procedurelogs/{num}", headers=h)
    assert r.status_code == 200
    r = await client.get(base + f"/procedurelogs/{num}", headers=h)
    assert r.status_code == 404


async def test_short_query(emu, client):
    base = emu.endpoints["local"]
    h = headers()
    sql = "SELECT AptNum, AptDateTime FROM appointments ORDER BY AptNum"
    r = await client.put(base + "/queries/ShortQuery", json={"SqlCommand": sql}, headers=h)
    assert r.status_code == 200
    rows = r.json()
    assert len(rows) == 100
    assert "T" in rows[0]["AptDateTime"]
    r2 = await client.put(
        base + "/queries/ShortQuery", params={"Offset": 100}, json={"SqlCommand": sql}, headers=h
    )
    assert r2.json()[0]["AptNum"] > rows[-1]["AptNum"]
    for bad in ("DELETE FROM patients", "UPDATE patients SET LName = 'x'", "DROP TABLE patients"):
        r = await client.put(base + "/queries/ShortQuery", json={"SqlCommand": bad}, headers=h)
        assert r.status_code == 401, bad
    r = await client.put(
        base + "/queries/ShortQuery",
        json={"SqlCommand": "WITH x AS (SELECT 1) INSERT INTO commlogs (Note) SELECT 'x'"},
        headers=h,
    )
    assert r.status_code in (400, 401)
    r = await client.put(
        base + "/queries/ShortQuery", json={"SqlCommand": "SELECT nope FROM nowhere"}, headers=h
    )
    assert r.status_code == 400


async def test_slots_and_recall_switch(emu, client):
    base = emu.endpoints["local"]
    h = headers()
    row = emu.db.execute("SELECT SchedDate FROM schedules WHERE SchedType = 'Provider' LIMIT 1").fetchone()
    if row:
        r = await client.get(base + "/appointments/Slots", params={"date": row[0]}, headers=h)
        assert r.status_code == 200
        for s in r.json():
            assert s["DateTimeStart"].startswith(row[0]) and s["DateTimeEnd"] > s["DateTimeStart"]
    rec = emu.db.execute(
        "SELECT r.PatNum, r.RecallTypeNum FROM recalls r JOIN recalltypes t ON t.RecallTypeNum = r.RecallTypeNum "
        "WHERE lower(t.Description) IN ('prophy', 'perio') LIMIT 1"
    ).fetchone()
    if rec:
        r = await client.put(base + "/recalls/SwitchType", json={"PatNum": rec[0]}, headers=h)
        assert r.status_code == 200, r.text
        r = await client.get(base + "/recalls", params={"PatNum": rec[0]}, headers=h)
        assert rec[1] not in [x["RecallTypeNum"] for x in r.json()] or len(r.json()) > 1
