"""Faults after execution (the request ran, its answer was lost) and server-side execution time, with the SDK.

``reset_after`` / ``504_after`` run the handler and commit before the connection is reset or a 504 replaces
the answer: the one case where a client that re-sends a POST stores it twice. Latency is execution time on the
server: the key stays busy while it runs, even after the client has given up waiting.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx2
import pytest
from emulators import emulator_fixture

from odapi_async import GatewayTimeout, Hub, OpenDental, OutcomeUnknown, TransportError
from odapi_async._settings import Mode
from odapi_async.emulator import Emulator
from odapi_async.emulator._server.faults import FaultInjector, Faults
from support import fast_retries

pytestmark = [pytest.mark.integration]
module_loop = pytest.mark.asyncio(loop_scope="module")

DEV = "dev"
KEYS = {"k": "full", "cust-busy": "full"}  # keys are scrubbed from SDK messages: no one-letter keys
INTERVAL = 0.05
#: Server-side execution time in the tests of the busy key: well above the client timeouts, for slow machines.
EXECUTION = 0.8


emu = emulator_fixture(
    seed=5,
    patients=30,
    developer_key=DEV,
    customer_keys=KEYS,
    intervals={"full": INTERVAL},
    fractional_retry_after=True,  # the intervals here are far below a second
)


def _headers(key: str = "k") -> dict[str, str]:
    return {"Authorization": f"ODFHIR {DEV}/{key}", "Content-Type": "application/json"}


def _stored(emu: Emulator, prefix: str) -> int:
    return int(
        emu.db.execute("SELECT count(*) FROM commlogs WHERE Note LIKE ?", (prefix + "%",)).fetchone()[0]
    )


def _requests(emu: Emulator, listener: str = "local", key: str = "k") -> int:
    per_key = emu.stats()["keys"].get(emu.key_id(key), {}).get("listeners", {}).get(listener, {})
    return int(per_key.get("requests", 0))


def _session(emu: Emulator, mode: Mode = "local", key: str = "k", **options: Any) -> OpenDental:
    od = OpenDental(
        DEV,
        key,
        endpoints=emu.endpoints,
        modes=(mode,),
        tier="full",
        intervals={"full": INTERVAL},
        hub=Hub(),
        **options,
    )
    return fast_retries(od)


def test_after_execution_rates_are_drawn_like_the_others() -> None:
    injector = FaultInjector(Faults(rate_reset_after=0.3, rate_504_after=0.2), seed=1)
    draws = [injector.draw()[1] for _ in range(2000)]
    assert 0.25 < draws.count("reset_after") / 2000 < 0.35
    assert 0.15 < draws.count("504_after") / 2000 < 0.25
    assert set(draws) == {"reset_after", "504_after", None}
    with pytest.raises(ValueError, match="more than 1"):
        Faults(rate_reset=0.6, rate_504_after=0.6).validate()


@module_loop
@pytest.mark.parametrize("kind", ["reset_after", "504_after"])
async def test_the_request_is_stored_although_its_answer_is_lost(emu: Emulator, kind: str) -> None:
    emu.set_faults("local", **{f"rate_{kind}": 1.0})
    note = f"raw-{kind}"
    try:
        async with httpx2.AsyncClient(timeout=5.0) as c:
            url = emu.endpoints["local"] + "/commlogs"
            if kind == "reset_after":
                with pytest.raises(httpx2.TransportError):
                    await c.post(url, json={"PatNum": 1, "Note": note}, headers=_headers())
            else:
                r = await c.post(url, json={"PatNum": 1, "Note": note}, headers=_headers())
                assert r.status_code == 504
    finally:
        emu.clear_faults("local")
    assert _stored(emu, note) == 1  # executed and committed: the client cannot tell it from a lost request
    assert emu.stats()["listeners"]["local"]["faults"][kind] >= 1


@module_loop
@pytest.mark.parametrize(("kind", "error"), [("reset_after", OutcomeUnknown), ("504_after", OutcomeUnknown)])
async def test_the_sdk_never_resends_a_post_whose_answer_was_lost(
    emu: Emulator, kind: str, error: type[Exception]
) -> None:
    """Stored rows == POSTs attempted, each attempted once, although 40 % of the answers were lost."""
    prefix = f"sdk-{kind}-"
    before = _requests(emu)
    emu.set_faults("local", **{f"rate_{kind}": 0.4})
    answered = lost = 0
    try:
        async with _session(emu, max_retries=5) as od:
            for i in range(25):
                try:
                    await od.commlogs.create(PatNum=1, Note=f"{prefix}{i}")
                    answered += 1
                except error:
                    lost += 1
    finally:
        emu.clear_faults("local")
    assert answered and lost, "both outcomes must occur or the test proves nothing"
    assert _requests(emu) - before == 25  # one attempt per POST: none was sent again
    assert _stored(emu, prefix) == 25  # every POST ran once on the server, answered or not
    rows = emu.db.execute("SELECT Note FROM commlogs WHERE Note LIKE ?", (prefix + "%",)).fetchall()
    assert len({r[0] for r in rows}) == 25  # none doubled


@module_loop
async def test_a_504_to_a_post_raises_outcome_unknown_and_is_not_sent_again(emu: Emulator) -> None:
    """The server ran the POST and answered 504: the SDK says the outcome is unknown, with the status."""
    note = "sdk-504-once"
    before = _requests(emu)
    emu.set_faults("local", rate_504_after=1.0)
    try:
        async with _session(emu, max_retries=5) as od:
            with pytest.raises(OutcomeUnknown) as err:
                await od.commlogs.create(PatNum=1, Note=note)
    finally:
        emu.clear_faults("local")
    assert err.value.status_code == 504 and isinstance(err.value, GatewayTimeout)
    assert (err.value.method, err.value.path, err.value.mode) == ("POST", "/commlogs", "local")
    assert "may have run" in str(err.value) and err.value.headers is not None  # the answer's, like any status
    assert _requests(emu) - before == 1  # sent once, although five retries were allowed
    assert _stored(emu, note) == 1  # and it did run: the row is there, once


@module_loop
async def test_a_504_to_a_get_is_still_retried_then_a_gateway_timeout(emu: Emulator) -> None:
    before = _requests(emu)
    emu.set_faults("local", rate_504=1.0)
    try:
        async with _session(emu, max_retries=2) as od:
            with pytest.raises(GatewayTimeout) as err:
                await od.patients.get(1)
    finally:
        emu.clear_faults("local")
    assert not isinstance(err.value, OutcomeUnknown)  # a read is safe to send again: nothing is unknown
    assert _requests(emu) - before == 3  # the first try and both retries


@module_loop
async def test_the_sdk_retries_a_read_whose_answer_was_lost(emu: Emulator) -> None:
    expected = [r[0] for r in emu.db.execute('SELECT "AptNum" FROM appointments ORDER BY 1')]
    emu.set_faults("local", rate_reset_after=0.2, rate_504_after=0.2)
    try:
        async with _session(emu, max_retries=10) as od:
            got = [a.AptNum async for a in od.appointments.list(Limit=20)]
    finally:
        emu.clear_faults("local")
    assert got == expected


@module_loop
async def test_execution_time_keeps_the_key_busy_after_the_client_gave_up(emu: Emulator) -> None:
    """A client that drops a request mid-execution and sends the next at once is refused (429)."""
    remote = emu.endpoints["remote"]
    emu.set_faults("remote", latency=EXECUTION)
    try:
        async with httpx2.AsyncClient(timeout=5.0) as c:
            await asyncio.sleep(INTERVAL)
            t0 = time.monotonic()
            with pytest.raises(httpx2.TimeoutException):
                await c.post(
                    remote + "/commlogs",
                    json={"PatNum": 1, "Note": "dropped-mid-run"},
                    headers=_headers("cust-busy"),
                    timeout=0.1,
                )
            emu.set_faults("remote", latency=0)
            r = await c.get(remote + "/patients", params={"Limit": 1}, headers=_headers("cust-busy"))
            assert r.status_code == 429  # the interval has passed, but the dropped request still runs
            assert time.monotonic() - t0 < EXECUTION
            # the commit comes at the end of the execution; poll for it, bounded (3 s)
            for _ in range(150):
                if _stored(emu, "dropped-mid-run"):
                    break
                await asyncio.sleep(0.02)
            await asyncio.sleep(INTERVAL)
            r = await c.get(remote + "/patients", params={"Limit": 1}, headers=_headers("cust-busy"))
            assert r.status_code == 200
    finally:
        emu.clear_faults("remote")
    assert _stored(emu, "dropped-mid-run") == 1  # the server finished the request the client gave up on


@module_loop
async def test_sdk_cancel_rule_against_server_execution_time(emu: Emulator) -> None:
    """The SDK gives up on a POST (timeout) that keeps running on the server; its next request on the key is
    refused while that POST executes, is retried after Retry-After, and nothing is lost or sent twice."""
    emu.set_faults("remote", latency=EXECUTION)
    key = emu.key_id("cust-busy")
    stats0 = emu.stats()["keys"].get(key, {}).get("listeners", {}).get("remote", {})
    violations0 = int(stats0.get("violations", 0))
    accepted0 = len(stats0.get("accepted_arrivals", []))
    try:
        # while the POST runs the key is busy: each refusal says Retry-After 0.05 s (fractional mode), so the
        # SDK knocks about 15 times in 0.8 s; the retries must outlast the execution
        async with _session(emu, mode="remote", key="cust-busy", timeout=0.2, max_retries=40) as od:
            await asyncio.sleep(INTERVAL)
            with pytest.raises(TransportError):
                await od.commlogs.create(PatNum=1, Note="sdk-timeout-post")
            emu.set_faults("remote", latency=0)
            rows = []
            async for p in od.patients.list(Limit=1):
                rows.append(p)
                break
    finally:
        emu.clear_faults("remote")
    assert rows
    stats = emu.stats()["keys"][key]["listeners"]["remote"]
    accepted = stats["accepted_arrivals"][accepted0:]
    assert len(accepted) == 2  # the POST once, the GET once: the refused attempts were never executed
    assert accepted[1] - accepted[0] >= EXECUTION  # the GET ran only after the POST's execution ended
    assert stats["violations"] - violations0 >= 1  # the SDK's first try came while the POST still ran
    assert _stored(emu, "sdk-timeout-post") == 1
