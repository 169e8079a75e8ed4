"""No input reaches an unbounded loop or an unhandled exception; an internal error is a 500 and serving goes on.

The bound on every request is the client's timeout (a hang fails the test, it does not stall the suite).
"""

from __future__ import annotations

import asyncio

import pytest
from conftest import headers

from odapi_async.emulator._api.wire import MAX_LIST_ITEMS
from odapi_async.emulator._server.app import MAX_BODY_CHARS

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]

BOUND = 10.0  # seconds any one answer may take here (each one takes milliseconds)
DIGITS = "9" * 5000  # past Python's 4300-digit limit for int()


def _day(emu) -> str:
    row = emu.db.execute(
        'SELECT "SchedDate" FROM schedules WHERE "SchedType" = \'Provider\' LIMIT 1'
    ).fetchone()
    return str(row[0])


BAD_QUERIES = [
    ("/appointments/Slots", {"lengthMinutes": "-1"}, "lengthMinutes must not be negative."),
    ("/appointments/Slots", {"lengthMinutes": DIGITS}, "too large"),
    ("/appointments", {"PatNum": DIGITS}, "too large"),
    ("/appointments", {"Offset": DIGITS}, "too large"),
    ("/appointments", {"Limit": "-5"}, "must not be negative"),
    ("/appointments", {"date": "0000-01-01"}, "not a valid date"),
    ("/appointments", {"date": "2024-02-30"}, "not a valid date"),
    ("/appointments", {"DateTStamp": "2024-01-01 25:00:00"}, "DateTStamp"),
]


@pytest.mark.parametrize(("path", "params", "text"), BAD_QUERIES)
async def test_a_bad_query_value_is_400(emu, client, path, params, text):
    r = await client.get(emu.endpoints["local"] + path, params=params, headers=headers(), timeout=BOUND)
    assert r.status_code == 400 and text in r.text, r.text


@pytest.mark.parametrize(
    ("method", "path"), [("GET", f"/patients/{DIGITS}"), ("PUT", f"/appointments/{DIGITS}/Note")]
)
async def test_a_key_beyond_any_number_is_400(emu, client, method, path):
    r = await client.request(
        method,
        emu.endpoints["local"] + path,
        json={"Note": "x"} if method == "PUT" else None,
        headers=headers(),
        timeout=BOUND,
    )
    assert r.status_code == 400 and "too large" in r.text, r.text


async def test_a_key_of_other_digits_is_404(emu, client):
    r = await client.get(emu.endpoints["local"] + "/patients/\u00b2", headers=headers(), timeout=BOUND)
    assert r.status_code == 404


@pytest.mark.parametrize(
    ("raw", "text"),
    [
        (b'{"PatNum": 1, "PayAmt": "nan"}', "PayAmt is invalid"),
        (b'{"PatNum": 1, "PayAmt": 1e999}', "not valid JSON: Number out of range"),
        (b'{"PatNum": 1, "PayAmt": "inf"}', "PayAmt is invalid"),
        (b"[" * 50_000 + b"]" * 50_000, "nested too deeply"),
        (b'{"PatNum": ' + DIGITS.encode() + b', "PayAmt": 1}', "not valid JSON: Integer value out of range"),
        (b'{"PatNum": "' + DIGITS.encode() + b'", "PayAmt": 1}', "PatNum is invalid"),
    ],
)
async def test_a_bad_body_is_400(emu, client, raw, text):
    r = await client.post(emu.endpoints["local"] + "/payments", content=raw, headers=headers(), timeout=BOUND)
    assert r.status_code == 400 and text in r.text, r.text


async def test_a_list_past_its_bound_is_400(emu, client):
    nums = list(range(1, MAX_LIST_ITEMS + 2))
    r = await client.post(
        emu.endpoints["local"] + "/procedurelogs/GroupNote",
        json={"PatNum": 1, "Note": "x", "ProcNums": nums},
        headers=headers(),
        timeout=BOUND,
    )
    assert r.status_code == 400 and f"more than {MAX_LIST_ITEMS} items" in r.text


async def test_bodies_up_to_the_documented_limit_are_taken_and_longer_ones_refused(emu, client):
    base = emu.endpoints["local"]
    pat = emu.db.execute('SELECT "PatNum" FROM patients LIMIT 1').fetchone()[0]
    filler = MAX_BODY_CHARS - 100
    r = await client.post(
        base + "/commlogs", json={"PatNum": pat, "Note": "n" * filler}, headers=headers(), timeout=BOUND
    )
    assert r.status_code == 201, r.text[:200]
    r = await client.post(
        base + "/commlogs",
        json={"PatNum": pat, "Note": "n" * (MAX_BODY_CHARS + 1)},
        headers=headers(),
        timeout=BOUND,
    )
    assert (r.status_code, r.text) == (400, f"The request body is larger than {MAX_BODY_CHARS} characters.")


async def test_a_huge_declared_length_is_refused_before_the_body_arrives(emu):
    host, port = emu.host, emu.ports["local"]
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(
            b"POST /api/v1/commlogs HTTP/1.1\r\nHost: x\r\nAuthorization: ODFHIR dev/cust-full\r\n"
            b"Content-Type: application/json\r\nContent-Length: 999999999999\r\n\r\n{"
        )
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), BOUND)
    finally:
        writer.close()
    assert head.startswith(b"HTTP/1.1 400")


async def test_an_internal_error_is_a_short_500_and_serving_goes_on(emu, client):
    base = emu.endpoints["local"]
    actions = emu.state.handlers.actions
    key = ("providers", "list")

    def broken(_h, _call):
        raise ZeroDivisionError("a defect")

    actions[key] = broken
    try:
        r = await client.get(base + "/providers", headers=headers(), timeout=BOUND)
    finally:
        del actions[key]
    assert (r.status_code, r.text) == (500, "The emulator failed on this request (ZeroDivisionError).")
    r = await client.get(
        base + "/providers", headers=headers(), timeout=BOUND
    )  # same connection, next request
    assert r.status_code == 200 and r.json()


async def test_bad_requests_do_not_stop_the_other_listeners(emu, client):
    """The inputs that used to hang or crash it, sent while every listener is asked for rows."""
    local = emu.endpoints["local"]
    day = _day(emu)
    bad = [
        client.get(
            local + "/appointments/Slots",
            params={"lengthMinutes": "-1", "date": day, "ProvNum": 1, "OpNum": 1},
            headers=headers(),
            timeout=BOUND,
        ),
        client.get(
            local + "/appointments/Slots",
            params={"lengthMinutes": "-1347595266974127"},
            headers=headers(),
            timeout=BOUND,
        ),
        client.post(local + "/commlogs", content=b"[" * 50_000, headers=headers(), timeout=BOUND),
        client.get(local + f"/patients/{DIGITS}", headers=headers(), timeout=BOUND),
    ]
    good = [
        client.get(
            emu.endpoints[name] + "/providers",
            params={"Limit": 1},
            headers=headers("cust-ent"),
            timeout=BOUND,
        )
        for name in ("local", "service", "remote")
    ]
    answers = await asyncio.wait_for(asyncio.gather(*bad, *good), 2 * BOUND)
    assert [r.status_code for r in answers[: len(bad)]] == [400, 400, 400, 400]
    assert [r.status_code for r in answers[len(bad) :]] == [200, 200, 200]
