"""The documented preconditions of writes (``emulator/_api/checks.py``): each broken rule is a 400 naming it."""

from __future__ import annotations

import pytest
from conftest import headers

from odapi_async.emulator._api.checks import CHECKS
from odapi_async.emulator._catalog.routes import catalog

pytestmark = [pytest.mark.integration]
session_loop = pytest.mark.asyncio(loop_scope="session")


def _one(emu, sql: str, *args):
    row = emu.db.execute(sql, args).fetchone()
    assert row is not None, sql
    return row[0]


@session_loop
async def _send(emu, client, method: str, path: str, body=None):
    return await client.request(method, emu.endpoints["local"] + path, json=body, headers=headers())


def test_every_check_names_a_documented_operation():
    cat = catalog()
    for segment, op_id in CHECKS:
        assert cat.resources[segment].op(op_id) is not None, (segment, op_id)


@session_loop
async def test_an_adjustment_follows_its_type_and_date(emu, client):
    pat = _one(emu, 'SELECT "PatNum" FROM patients ORDER BY 1 LIMIT 1')
    plus = _one(emu, 'SELECT "DefNum" FROM definitions WHERE "Category" = 1 AND "ItemValue" = \'+\' LIMIT 1')
    minus = _one(emu, 'SELECT "DefNum" FROM definitions WHERE "Category" = 1 AND "ItemValue" = \'-\' LIMIT 1')
    day = "2001-02-03"
    r = await _send(
        emu, client, "POST", "/adjustments", {"PatNum": pat, "AdjType": plus, "AdjAmt": -5, "AdjDate": day}
    )
    assert (r.status_code, r.text) == (400, "AdjAmt must be positive for an AdjType whose ItemValue is '+'.")
    r = await _send(
        emu, client, "POST", "/adjustments", {"PatNum": pat, "AdjType": minus, "AdjAmt": 5, "AdjDate": day}
    )
    assert r.status_code == 400 and "negative" in r.text
    r = await _send(
        emu,
        client,
        "POST",
        "/adjustments",
        {"PatNum": pat, "AdjType": plus, "AdjAmt": 5, "AdjDate": "2999-01-01"},
    )
    assert (r.status_code, r.text) == (400, "AdjDate cannot be a future date.")
    other = _one(emu, 'SELECT "ProcNum" FROM procedurelogs WHERE "PatNum" != ? LIMIT 1', pat)
    r = await _send(
        emu,
        client,
        "POST",
        "/adjustments",
        {"PatNum": pat, "AdjType": plus, "AdjAmt": 5, "AdjDate": day, "ProcNum": other},
    )
    assert r.status_code == 400 and "associated to the patient" in r.text
    r = await _send(
        emu, client, "POST", "/adjustments", {"PatNum": pat, "AdjType": plus, "AdjAmt": 5, "AdjDate": day}
    )
    assert r.status_code == 201, r.text


@session_loop
@pytest.mark.parametrize(
    ("body", "text"),
    [
        ({"Pattern": "XX//", "PatternSecondary": "X/"}, "PatternSecondary must match the length of Pattern."),
        ({"Pattern": "XXab"}, "Pattern must be made of 'X' and '/' characters only."),
        ({"colorOverride": "red"}, "colorOverride must be a color in R,G,B format."),
    ],
)
async def test_appointment_patterns_and_colors(emu, client, body, text):
    apt = _one(emu, 'SELECT "AptNum" FROM appointments ORDER BY 1 LIMIT 1')
    r = await _send(emu, client, "PUT", f"/appointments/{apt}", body)
    assert (r.status_code, r.text) == (400, text)


@session_loop
async def test_confirm_takes_one_field(emu, client):
    apt = _one(emu, 'SELECT "AptNum" FROM appointments ORDER BY 1 LIMIT 1')
    r = await _send(emu, client, "PUT", f"/appointments/{apt}/Confirm", {"confirmVal": "Sent", "defNum": 1})
    assert (r.status_code, r.text) == (400, "Only one of confirmVal or defNum may be given.")


@session_loop
async def test_an_employer_in_use_is_not_deleted(emu, client):
    used = _one(emu, 'SELECT "EmployerNum" FROM patients WHERE "EmployerNum" != 0 LIMIT 1')
    r = await _send(emu, client, "DELETE", f"/employers/{used}")
    assert r.status_code == 400 and "cannot be deleted" in r.text
    r = await _send(emu, client, "POST", "/employers", {"EmpName": "Nobody Works Here Inc"})
    assert r.status_code == 201, r.text
    r = await _send(emu, client, "DELETE", f"/employers/{r.json()['EmployerNum']}")
    assert r.status_code == 200, r.text


@session_loop
async def test_a_patfielddef_in_use_is_not_deleted_and_names_are_unique(emu, client):
    name = _one(emu, 'SELECT d."FieldName" FROM patfielddefs d ORDER BY 1 LIMIT 1')
    r = await _send(emu, client, "POST", "/patfielddefs", {"FieldName": name, "FieldType": "Text"})
    assert (r.status_code, r.text) == (400, "A PatFieldDef with that FieldName already exists.")
    r = await _send(emu, client, "POST", "/patfielddefs", {"FieldName": "Emu Pick", "FieldType": "PickList"})
    assert (r.status_code, r.text) == (400, "PickList is required if FieldType is PickList.")
    pat = _one(emu, 'SELECT "PatNum" FROM patients ORDER BY 1 LIMIT 1')
    r = await _send(emu, client, "POST", "/patfields", {"PatNum": pat, "FieldName": name, "FieldValue": "x"})
    assert r.status_code == 201, r.text
    num = _one(emu, 'SELECT "PatFieldDefNum" FROM patfielddefs WHERE "FieldName" = ?', name)
    r = await _send(emu, client, "DELETE", f"/patfielddefs/{num}")
    assert (r.status_code, r.text) == (400, "A PatFieldDef that is in use cannot be deleted.")


@session_loop
@pytest.mark.parametrize(
    ("body", "text"),
    [
        ({"FromCode": "D5000", "ToCode": "D1000"}, "FromCode must be alphabetically less than ToCode."),
    ],
)
async def test_coverage_spans_run_upwards(emu, client, body, text):
    cat = _one(emu, 'SELECT "CovCatNum" FROM covcats ORDER BY 1 LIMIT 1')
    r = await _send(emu, client, "POST", "/covspans", {"CovCatNum": cat, **body})
    assert (r.status_code, r.text) == (400, text)


@session_loop
async def test_a_recall_type_once_per_patient(emu, client):
    pat, kind = emu.db.execute('SELECT "PatNum", "RecallTypeNum" FROM recalls LIMIT 1').fetchone()
    r = await _send(emu, client, "POST", "/recalls", {"PatNum": pat, "RecallTypeNum": kind})
    assert (r.status_code, r.text) == (400, "A patient may only have one recall for each RecallType.")


@session_loop
@pytest.mark.parametrize(
    ("method", "path", "body", "text"),
    [
        ("POST", "/carriers", {"CarrierName": "Z", "Zip": "1234"}, "Zip must be in the format"),
        ("POST", "/patients", {"LName": "A", "FName": "B", "Zip": "ABCDE"}, "Zip must be in the format"),
        ("POST", "/patients", {"LName": "A", "FName": "B", "Guarantor": 1, "SuperFamily": 1}, "Only one of"),
        (
            "POST",
            "/patients",
            {"LName": "A", "FName": "B", "BillingType": "No Such Type"},
            "BillingType must be",
        ),
        ("PUT", "/patients/1", {"LName": " "}, "LName cannot be cleared."),
        ("PUT", "/providers/1", {"Abbr": ""}, "Abbr cannot be blank."),
        (
            "POST",
            "/providers",
            {"Abbr": "ORG", "LName": "Org", "IsNotPerson": "true", "FName": "X"},
            "must be omitted",
        ),
        ("POST", "/referrals", {"LName": "Ref", "Telephone": "555-1234"}, "Telephone must be ten digits."),
        (
            "POST",
            "/covcats",
            {"Description": "x", "DefaultPercent": 101},
            "DefaultPercent must be between -1 and 100.",
        ),
        ("POST", "/userods", {"UserName": "emu ", "UserGroupNum": 1, "Password": "Abcdefg1"}, "whitespace"),
        (
            "POST",
            "/userods",
            {"UserName": "emu-weak", "UserGroupNum": 1, "Password": "abc"},
            "at least 8 characters",
        ),
        (
            "POST",
            "/procedurecodes",
            {"ProcCode": "Z1", "Descript": "d", "AbbrDesc": "a", "BaseUnits": -1},
            "BaseUnits",
        ),
    ],
)
async def test_field_rules(emu, client, method, path, body, text):
    r = await _send(emu, client, method, path, body)
    assert r.status_code == 400 and text in r.text, r.text


@session_loop
async def test_a_task_note_cannot_be_blank(emu, client):
    task = emu.db.execute('SELECT "TaskNum" FROM tasks LIMIT 1').fetchone()
    r = await _send(
        emu, client, "POST", "/tasknotes", {"TaskNum": task[0] if task else 1, "UserNum": 1, "Note": "  "}
    )
    assert (r.status_code, r.text) == (400, "Note cannot be blank.")


@session_loop
async def test_a_claimproc_on_a_check_keeps_its_payment(emu, client):
    num = _one(emu, 'SELECT "ClaimProcNum" FROM claimprocs WHERE "ClaimPaymentNum" != 0 LIMIT 1')
    r = await _send(emu, client, "PUT", f"/claimprocs/{num}", {"InsPayAmt": 1.5})
    assert (r.status_code, r.text) == (
        400,
        "InsPayAmt cannot be updated once the procedure is attached to a check.",
    )
    r = await _send(emu, client, "PUT", f"/claimprocs/{num}", {"Remarks": "ok"})
    assert r.status_code == 200, r.text


@session_loop
async def test_a_benefit_percent_belongs_to_coinsurance(emu, client):
    num = _one(emu, 'SELECT "BenefitNum" FROM benefits WHERE "BenefitType" != \'CoInsurance\' LIMIT 1')
    r = await _send(emu, client, "PUT", f"/benefits/{num}", {"Percent": 50})
    assert (r.status_code, r.text) == (400, "Percent is only allowed if BenefitType is CoInsurance.")


@session_loop
async def test_only_the_guarantor_moves_the_family(emu, client):
    member, guarantor = emu.db.execute(
        'SELECT "PatNum", "Guarantor" FROM patients WHERE "Guarantor" != "PatNum" AND "Guarantor" != 0 LIMIT 1'
    ).fetchone()
    r = await _send(emu, client, "PUT", f"/patients/{member}", {"Guarantor": member})
    assert r.status_code == 400 and "Guarantor cannot be changed" in r.text
    r = await _send(emu, client, "PUT", f"/patients/{member}", {"FamFinUrgNote": "x"})
    assert (r.status_code, r.text) == (400, "FamFinUrgNote can only be set for a guarantor.")
    r = await _send(emu, client, "PUT", f"/patients/{guarantor}", {"FamFinUrgNote": "Call first."})
    assert r.status_code == 200, r.text
