"""Page caps per listener, DateTStamp filtering and serverDateTime."""

from __future__ import annotations

import re

import pytest
from conftest import headers

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]


async def _ensure_rows(emu, client, n: int) -> int:
    have = emu.db.execute("SELECT count(*) FROM appointments").fetchone()[0]
    base = emu.endpoints["local"]
    for i in range(have, n):
        await client.post(
            base + "/appointments",
            json={"PatNum": 1, "Op": 1, "AptDateTime": "2032-01-01 08:00:00"},
            headers=headers(),
        )
    return emu.db.execute("SELECT count(*) FROM appointments").fetchone()[0]


async def test_page_caps(emu, client):
    total = await _ensure_rows(emu, client, 1100)
    assert total >= 1100
    local = emu.endpoints["local"]
    r = await client.get(local + "/appointments", headers=headers())
    assert len(r.json()) == 1000  # default Limit = the cap
    r = await client.get(local + "/appointments", params={"Limit": 5000}, headers=headers())
    assert len(r.json()) == 1000
    r = await client.get(
        emu.endpoints["service"] + "/appointments", params={"Limit": 1500}, headers=headers()
    )
    assert len(r.json()) == 1000
    r = await client.get(local + "/appointments", params={"Limit": 7, "Offset": 3}, headers=headers())
    nums = [a["AptNum"] for a in r.json()]
    assert len(nums) == 7 and nums == sorted(nums)
    first = await client.get(local + "/appointments", params={"Limit": 10}, headers=headers())
    assert [a["AptNum"] for a in first.json()][3:10] == nums
    r = await client.get(local + "/appointments", params={"Offset": total}, headers=headers())
    assert r.json() == []
    # remote: 100, and enterprise tier 1000
    remote = emu.endpoints["remote"]
    r = await client.get(remote + "/appointments", params={"Limit": 1000}, headers=headers("cust-ro"))
    assert r.status_code == 200 and len(r.json()) == 100
    r = await client.get(remote + "/appointments", params={"Limit": 5000}, headers=headers("cust-ent"))
    assert len(r.json()) == 1000


async def test_date_t_stamp_filter_and_server_date_time(emu, client):
    base = emu.endpoints["local"]
    r = await client.get(base + "/procedurelogs", params={"Limit": 1}, headers=headers())
    watermark = r.json()[0]["serverDateTime"]
    assert re.match(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$", watermark)
    r = await client.get(base + "/procedurelogs", params={"DateTStamp": watermark}, headers=headers())
    before = {p["ProcNum"] for p in r.json()}
    emu.db.execute(
        "UPDATE procedurelogs SET DateTStamp = '0001-01-01 00:00:00' WHERE DateTStamp >= ?", (watermark,)
    )
    r = await client.put(base + "/procedurelogs/1", json={"Surf": "MOD"}, headers=headers())
    assert r.status_code == 200
    r = await client.get(base + "/procedurelogs", params={"DateTStamp": watermark}, headers=headers())
    rows = r.json()
    assert [p["ProcNum"] for p in rows] == [1]
    assert rows[0]["DateTStamp"] >= watermark
    assert all(p["serverDateTime"] >= watermark for p in rows)
    assert before is not None
    # the ISO T form is refused, as the docs allow only "yyyy-MM-dd HH:mm:ss" (see test_emu_statuses)
    r = await client.get(
        base + "/procedurelogs", params={"DateTStamp": watermark.replace(" ", "T")}, headers=headers()
    )
    assert r.status_code == 400
    # resources without serverDateTime in the docs do not get it
    r = await client.get(base + "/commlogs", params={"Limit": 1}, headers=headers())
    assert "serverDateTime" not in r.json()[0]
    r = await client.get(base + "/providers", params={"ClinicNum": 1}, headers=headers())
    assert all("serverDateTime" not in p for p in r.json())


async def test_appointment_date_range(emu, client):
    base = emu.endpoints["local"]
    day = emu.db.execute(
        "SELECT substr(AptDateTime, 1, 10) FROM appointments WHERE AptDateTime > '1900' LIMIT 1"
    ).fetchone()[0]
    r = await client.get(base + "/appointments", params={"date": day}, headers=headers())
    assert r.json() and all(a["AptDateTime"].startswith(day) for a in r.json())
    r = await client.get(base + "/appointments", params={"dateStart": day, "dateEnd": day}, headers=headers())
    assert all(a["AptDateTime"].startswith(day) for a in r.json())
