"""Remote throttle (429 + Retry-After), fault injection at its configured rates, listener stop/start."""

from __future__ import annotations

import asyncio
import time

import httpx2
import pytest
from conftest import INTERVALS, headers
from waiting import until

from odapi_async.emulator import Emulator

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]


async def test_too_early_remote_request_gets_429(emu, client):
    remote = emu.endpoints["remote"] + "/patients"
    h = headers("cust-ro")  # read_all: 0.25 s
    kid = emu.key_id("cust-ro")
    await asyncio.sleep(INTERVALS["read_all"])  # let an earlier test's request on this key age out
    r1 = await client.get(remote, params={"Limit": 1}, headers=h)
    assert r1.status_code == 200
    r2 = await client.get(remote, params={"Limit": 1}, headers=h)
    assert r2.status_code == 429
    wait = float(r2.headers["Retry-After"])
    assert 0 < wait <= INTERVALS["read_all"]
    assert "too many requests" in r2.text.lower()
    stats = emu.stats()["keys"][kid]["listeners"]["remote"]
    assert stats["violations"] >= 1
    # local and service are not throttled
    for name in ("local", "service"):
        for _ in range(3):
            r = await client.get(emu.endpoints[name] + "/patients", params={"Limit": 1}, headers=h)
            assert r.status_code == 200


async def test_spaced_requests_are_not_throttled(emu, client):
    remote = emu.endpoints["remote"] + "/patients"
    h = headers("cust-full")  # full: 0.05 s
    kid = emu.key_id("cust-full")

    def remote_stats() -> dict:
        return emu.stats()["keys"].get(kid, {}).get("listeners", {}).get("remote", {})

    async def until_the_interval_since_the_last_accepted_arrival() -> None:
        # Spaced by the server's own stamps (the same monotonic clock): a request held up on its way in
        # must not make the next one look early.
        accepted = remote_stats().get("accepted_arrivals", [])
        if accepted:
            await asyncio.sleep(max(0.0, accepted[-1] + INTERVALS["full"] + 0.01 - time.monotonic()))

    before = remote_stats().get("violations", 0)
    for _ in range(6):
        await until_the_interval_since_the_last_accepted_arrival()
        r = await client.get(remote, params={"Limit": 1}, headers=h)
        assert r.status_code == 200, r.text
    st = emu.stats()["keys"][kid]["listeners"]["remote"]
    assert st["violations"] == before
    accepted = st["accepted_arrivals"][-6:]
    gaps = [b - a for a, b in zip(accepted, accepted[1:])]
    assert min(gaps) >= INTERVALS["full"]


async def test_concurrent_request_while_busy_is_refused(emu, client):
    """A request arriving while the previous one still executes is refused even after the interval."""
    emu.set_faults("remote", latency=0.2)
    try:
        remote = emu.endpoints["remote"] + "/patients"
        h = headers("cust-ent")  # enterprise interval 0 here: only the in-flight rule applies
        kid = emu.key_id("cust-ent")

        def accepted() -> int:
            per = emu.stats()["keys"].get(kid, {}).get("listeners", {}).get("remote", {})
            return len(per.get("accepted_arrivals", []))

        before = accepted()
        slow = asyncio.create_task(client.get(remote, params={"Limit": 1}, headers=h))
        await until(lambda: accepted() == before + 1, what="the slow request to start executing")
        r = await client.get(remote, params={"Limit": 1}, headers=h)
        assert r.status_code == 429 and "retry-after" in r.headers
        assert (await slow).status_code == 200
    finally:
        emu.set_faults("remote", latency=0)


async def _hammer(client, url, n, cust="cust-fault"):
    outcomes = {"ok": 0, "504": 0, "reset": 0, "econnector": 0}
    for _ in range(n):
        try:
            r = await client.get(url, params={"Limit": 1}, headers=headers(cust))
        except httpx2.TransportError:
            outcomes["reset"] += 1
            continue
        if r.status_code == 200:
            outcomes["ok"] += 1
        elif r.status_code == 504:
            outcomes["504"] += 1
        elif r.status_code == 400 and "eConnector" in r.text:
            outcomes["econnector"] += 1
        else:
            raise AssertionError((r.status_code, r.text))
    return outcomes


@pytest.mark.slow("hundreds of requests to measure a fault rate (5 s under coverage and load)")
@pytest.mark.parametrize("kind", ["504", "reset", "econnector"])
async def test_fault_rates(emu, client, kind):
    n, rate = 200, 0.2
    emu.set_faults("service", **{f"rate_{kind}": rate})
    before = emu.stats()["listeners"]["service"]["faults"][kind]
    try:
        async with httpx2.AsyncClient(timeout=5.0) as c:
            out = await _hammer(c, emu.endpoints["service"] + "/patients", n)
    finally:
        emu.clear_faults("service")
    injected = emu.stats()["listeners"]["service"]["faults"][kind] - before
    assert out[kind] == injected  # what the client saw is what the server injected
    assert 0.1 * n <= injected <= 0.3 * n, out
    assert out["ok"] == n - injected


async def test_latency(emu, client):
    emu.set_faults("local", latency=0.05, jitter=0.02)
    try:
        t0 = time.monotonic()
        for _ in range(5):
            r = await client.get(emu.endpoints["local"] + "/patients", params={"Limit": 1}, headers=headers())
            assert r.status_code == 200
        elapsed = time.monotonic() - t0
    finally:
        emu.clear_faults("local")
    assert 0.25 <= elapsed < 2.0


async def test_listener_stop_start(emu, client):
    url = emu.endpoints["service"] + "/patients"
    port = emu.ports["service"]
    emu.stop_listener("service")
    assert emu.stats()["up"]["service"] is False
    with pytest.raises(httpx2.ConnectError):
        async with httpx2.AsyncClient() as c:
            await c.get(url, headers=headers())
    await emu.start_listener("service")
    assert emu.ports["service"] == port
    async with httpx2.AsyncClient() as c:
        r = await c.get(url, params={"Limit": 1}, headers=headers())
    assert r.status_code == 200


async def test_stats_shape_has_no_keys(emu, client):
    snap = emu.stats()
    text = repr(snap)
    for key in ("cust-full", "cust-ro", "cust-ent", "cust-fault"):
        assert key not in text
    assert set(snap) >= {"listeners", "keys", "faults", "up"}
    per = snap["keys"][emu.key_id("cust-full")]
    assert per["tier"] == "full"
    assert {"requests", "violations", "faults", "arrivals", "accepted_arrivals"} <= set(
        per["listeners"]["local"]
    )


async def test_emulator_in_thread_and_faults_at_start():
    emu = Emulator(
        patients=20,
        customer_keys={"k": "full"},
        faults={"local": {"rate_504": 1.0}},
    )
    with emu.in_thread():
        async with httpx2.AsyncClient() as c:
            r = await c.get(emu.endpoints["local"] + "/patients", headers=headers("k"))
            assert r.status_code == 504
            r = await c.get(emu.endpoints["service"] + "/patients", params={"Limit": 2}, headers=headers("k"))
            assert r.status_code == 200 and len(r.json()) == 2
        emu.stop_listener("remote")
        await emu.start_listener("remote")
        assert emu.stats()["listeners"]["local"]["faults"]["504"] == 1
