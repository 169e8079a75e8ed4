"""Every spec resource answers on every listener; routes, validation and auth behave like the real server."""

from __future__ import annotations

import pytest
from conftest import headers

from odapi_async.emulator._catalog.routes import catalog

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]

LISTENERS = ("local", "service", "remote")


def _list_ops():
    out = []
    for res in catalog().resources.values():
        op = res.op("list")
        if op is not None and op.method == "GET":
            out.append(op)
    return out


async def test_spec_counts():
    cat = catalog()
    assert len(cat.resources) == 106
    assert len(cat.operations) == 356


@pytest.mark.parametrize("listener", LISTENERS)
async def test_every_resource_lists(emu, client, listener):
    base = emu.endpoints[listener]
    ops = _list_ops()
    assert len(ops) > 80
    for op in ops:
        params = {p.name: "1" for p in op.required_query}
        r = await client.get(base + op.path, params=params, headers=headers("cust-ent"))
        assert r.status_code == 200, (op.path, r.status_code, r.text)
        assert isinstance(r.json(), list), op.path


@pytest.mark.slow("one request to every operation of the spec (9 s under coverage and load)")
async def test_every_operation_has_an_answer(emu, client):
    """Each of the 356 operations is routed: nothing answers 405 or 500, nothing hangs."""
    base = emu.endpoints["local"]
    for op in catalog().operations:
        path = op.path.replace("{" + op.path_param.name + "}", "1") if op.path_param else op.path
        params = {p.name: "1" for p in op.required_query}
        body = None
        if op.method in ("POST", "PUT"):
            body = {}
            for p in op.required_body:
                body[p.name] = {
                    "int": 1,
                    "float": 1.0,
                    "bool": "false",
                    "date": "2024-01-02",
                    "datetime": "2024-01-02 09:00:00",
                    "time": "09:00:00",
                    "enum": (p.enum or ("x",))[0],
                    "list": [1],
                }.get(p.type, "x")
        if op.resource.segment == "queries":
            body = {"SqlCommand": "SELECT 1 AS one"}
        r = await client.request(op.method, base + path, params=params, json=body, headers=headers())
        assert r.status_code not in (405, 500), (op.method, op.path, r.status_code, r.text)
        if op.deprecated:
            assert r.status_code == 410


async def test_literal_routes_win_over_keys(emu, client):
    base = emu.endpoints["local"]
    r = await client.get(base + "/appointments/Slots", headers=headers())
    assert r.status_code == 200 and isinstance(r.json(), list)
    r = await client.get(base + "/patients/Simple", params={"Limit": 3}, headers=headers())
    assert r.status_code == 200 and len(r.json()) == 3


async def test_unknown_parameter_is_refused(emu, client):
    r = await client.get(
        emu.endpoints["local"] + "/patients", params={"DateTStamp": "2024-01-01"}, headers=headers()
    )
    assert r.status_code == 400
    assert r.text == "'DateTStamp' is not a valid parameter."
    assert r.headers["content-type"].startswith("text/plain")


async def test_missing_required_parameter(emu, client):
    r = await client.get(emu.endpoints["local"] + "/allergies", headers=headers())
    assert r.status_code == 400 and "PatNum" in r.text


async def test_bad_parameter_value(emu, client):
    r = await client.get(
        emu.endpoints["local"] + "/appointments", params={"PatNum": "abc"}, headers=headers()
    )
    assert r.status_code == 400 and "PatNum" in r.text
    r = await client.get(
        emu.endpoints["local"] + "/appointments", params={"AptStatus": "Nope"}, headers=headers()
    )
    assert r.status_code == 400 and "AptStatus" in r.text


async def test_unknown_route_and_key(emu, client):
    base = emu.endpoints["local"]
    r = await client.get(base + "/nothinghere", headers=headers())
    assert r.status_code == 404
    r = await client.get(base + "/appointments/999999999", headers=headers())
    assert r.status_code == 404 and "999999999" in r.text


async def test_deprecated_operation_is_gone(emu, client):
    r = await client.post(emu.endpoints["local"] + "/payplans", json={}, headers=headers())
    assert r.status_code == 410


@pytest.mark.parametrize(
    "auth, fragment",
    [
        (None, "missing"),
        ("Bearer dev/cust-full", "ODFHIR"),
        ("ODFHIR wrong/cust-full", "developer key"),
        ("ODFHIR dev/unknown-key", "customer key"),
    ],
)
async def test_auth_failures(emu, client, auth, fragment):
    h = {"Content-Type": "application/json"}
    if auth:
        h["Authorization"] = auth
    r = await client.get(emu.endpoints["local"] + "/patients", headers=h)
    assert r.status_code == 401
    assert fragment in r.text
    assert "unknown-key" not in r.text and "wrong" not in r.text


async def test_body_checks(emu, client):
    base = emu.endpoints["local"]
    h = headers()
    r = await client.post(base + "/commlogs", content=b'{"PatNum": 1', headers=h)
    assert r.status_code == 400 and "JSON" in r.text
    r = await client.post(
        base + "/commlogs", content=b'{"PatNum": 1}', headers={**h, "Content-Type": "text/plain"}
    )
    assert r.status_code == 400 and "Content-Type" in r.text
    no_ct = {"Authorization": h["Authorization"]}
    r = await client.post(base + "/commlogs", content=b'{"PatNum": 1}', headers=no_ct)
    assert r.status_code == 400 and "Content-Type" in r.text
    r = await client.post(base + "/commlogs", json={"PatNum": 1, "Bogus": 2}, headers=h)
    assert r.status_code == 400 and "'Bogus'" in r.text
    r = await client.post(base + "/commlogs", json={"Note": "x"}, headers=h)
    assert r.status_code == 400 and "PatNum is required" in r.text


async def test_body_too_large(emu, client):
    big = '{"PatNum": 1, "Note": "' + "x" * 16_800_001 + '"}'
    r = await client.post(emu.endpoints["local"] + "/commlogs", content=big.encode(), headers=headers())
    assert r.status_code == 400 and "larger" in r.text


async def test_no_delete_where_docs_have_none(emu, client):
    r = await client.delete(emu.endpoints["local"] + "/patients/1", headers=headers())
    assert r.status_code == 400 and "cannot be deleted" in r.text
    r = await client.delete(emu.endpoints["local"] + "/providers/1", headers=headers())
    assert r.status_code == 400


async def test_admin_routes(emu, client):
    root = emu.endpoints["service"].removesuffix("/api/v1")
    r = await client.get(root + "/_emulator/stats")
    assert r.status_code == 200
    snap = r.json()
    assert set(snap["listeners"]) == set(LISTENERS)
    assert "cust-full" not in r.text
    r = await client.put(root + "/_emulator/faults", json={"listener": "service", "latency": 0.001})
    assert r.status_code == 200 and r.json()["service"]["latency"] == 0.001
    r = await client.put(root + "/_emulator/faults", json={"listener": "service", "latency": 0})
    assert r.json()["service"]["latency"] == 0
    r = await client.put(root + "/_emulator/faults", json={"listener": "service", "nonsense": 1})
    assert r.status_code == 400
