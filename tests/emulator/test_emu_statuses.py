"""Only the documented statuses (400/401/404 and successes) for bad requests; datetimes in the one documented form."""

from __future__ import annotations

import pytest
from conftest import headers

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]

HUGE = "9" * 25  # beyond any 64-bit key


@pytest.mark.parametrize(
    ("method", "path"),
    [("PATCH", "/patients"), ("POST", "/patients/1"), ("DELETE", "/appointments"), ("HEAD", "/patients/1/x")],
)
async def test_an_undocumented_operation_is_404(emu, client, method, path):
    r = await client.request(method, emu.endpoints["local"] + path, headers=headers())
    assert r.status_code == 404, r.text


async def test_a_too_large_number_is_400_not_a_crash(emu, client):
    base = emu.endpoints["local"]
    h = headers()
    r = await client.get(base + f"/patients/{HUGE}", headers=h)
    assert r.status_code == 400 and "too large" in r.text
    r = await client.get(base + "/appointments", params={"PatNum": HUGE}, headers=h)
    assert r.status_code == 400 and "PatNum" in r.text
    r = await client.get(base + "/appointments", params={"Offset": HUGE}, headers=h)
    assert r.status_code == 400 and "Offset" in r.text
    r = await client.post(base + "/commlogs", json={"PatNum": int(HUGE), "Note": "x"}, headers=h)
    assert r.status_code == 400 and "PatNum" in r.text
    r = await client.put(base + f"/appointments/{HUGE}/Note", json={"Note": "x"}, headers=h)
    assert r.status_code == 400
    assert emu.stats()["listeners"]["local"]["statuses"].get(500, 0) == 0


@pytest.mark.parametrize(
    "value", ["2024-01-02", "2024-01-02T03:04:05", "2024-01-02 03:04", "2024-1-2 03:04:05"]
)
async def test_datetime_parameters_take_only_the_documented_form(emu, client, value):
    base = emu.endpoints["local"]
    r = await client.get(base + "/claims", params={"SecDateTEdit": value}, headers=headers())
    assert r.status_code == 400
    assert r.text == f"SecDateTEdit is invalid: '{value}' is not in the format yyyy-MM-dd HH:mm:ss."
    r = await client.get(base + "/appointments", params={"DateTStamp": value}, headers=headers())
    assert r.status_code == 400 and "yyyy-MM-dd HH:mm:ss" in r.text


async def test_datetime_parameters_in_the_documented_form_are_accepted(emu, client):
    base = emu.endpoints["local"]
    r = await client.get(base + "/claims", params={"SecDateTEdit": "2024-01-02 03:04:05"}, headers=headers())
    assert r.status_code == 200
    r = await client.get(
        base + "/appointments", params={"DateTStamp": "2024-01-02 03:04:05"}, headers=headers()
    )
    assert r.status_code == 200 and r.json()


async def test_body_names_match_without_case_but_helper_fields_stay_ignored(emu, client):
    base = emu.endpoints["local"]
    h = headers()
    body = {
        "PatNum": 1,
        "Op": 1,
        "AptDateTime": "2031-05-06 10:00:00",
        "confirmed": "Not Called",
        "provnum": 1,
    }
    r = await client.post(base + "/appointments", json=body, headers=h)
    assert r.status_code == 201, r.text
    apt = r.json()
    assert apt["ProvNum"] == 1  # 'provnum' is ProvNum
    assert apt["Confirmed"] == 0  # 'confirmed' is the read-only helper, not Confirmed: ignored
    r = await client.post(base + "/appointments", json={**body, "NoSuchField": 1}, headers=h)
    assert r.status_code == 400 and "NoSuchField" in r.text
