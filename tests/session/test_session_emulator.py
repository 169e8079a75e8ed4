"""The SDK against the emulator over real sockets: full streams on every listener, CRUD, errors."""

from __future__ import annotations

import datetime as dt
import logging
import traceback

import pytest
from emulators import emulator_fixture

from odapi_async import BadRequest, Hub, InvalidParameter, NotFound, OpenDental, Unauthorized
from odapi_async._settings import Mode
from odapi_async.emulator import Emulator

pytestmark = [pytest.mark.integration]
module_loop = pytest.mark.asyncio(loop_scope="module")

DEV = "dev-int"
KEYS = {"cust-a": "full", "cust-b": "full"}
INTERVAL = 0.01


emu = emulator_fixture(
    seed=7,
    patients=2100,
    developer_key=DEV,
    customer_keys=KEYS,
    intervals={"full": INTERVAL},
    fractional_retry_after=True,  # sub-second intervals: whole-second Retry-After would stall the tests
)


def session(emu: Emulator, mode: Mode, key: str = "cust-a") -> OpenDental:
    return OpenDental(
        DEV, key, endpoints=emu.endpoints, modes=(mode,), tier="full", intervals={"full": INTERVAL}, hub=Hub()
    )


@pytest.mark.slow("2 100 rows on each listener, 100 a page on Remote (5 s under coverage and load)")
@pytest.mark.parametrize(("mode", "cap"), [("local", 1000), ("service", 1000), ("remote", 100)])
@module_loop
async def test_streams_every_row_once_on_each_listener(emu, mode, cap) -> None:
    expected = [r[0] for r in emu.db.execute("SELECT AptNum FROM appointments ORDER BY AptNum")]
    assert len(expected) >= 10_000
    before = emu.stats()
    async with session(emu, mode) as od:
        sizes = [len(page) async for page in od.appointments.list().pages()]
        got = [a.AptNum async for a in od.appointments.list()]
    assert got == expected  # nothing lost, nothing doubled, in order
    assert max(sizes) == cap and sum(sizes) == len(expected)
    after = emu.stats()["listeners"][mode]
    served = after["requests"] - before["listeners"][mode]["requests"]
    assert served == 2 * len(sizes) + (2 if mode != "remote" else 0) or served >= 2 * len(sizes)
    assert after["violations"] == before["listeners"][mode]["violations"]  # no 429 at the server


@module_loop
async def test_crud_round_trip_and_incremental_filter(emu) -> None:
    async with session(emu, "local") as od:
        pat = await od.patients.get(1)
        start = dt.datetime.now().replace(microsecond=0) - dt.timedelta(seconds=1)
        log = await od.commlogs.create(PatNum=pat.PatNum, Note="called", Mode_="Phone", SentOrReceived="Sent")
        assert log.PatNum == pat.PatNum and log.Note == "called"
        fetched = await od.commlogs.get(log.CommlogNum)
        assert fetched.Note == "called" and fetched.Mode_ == "Phone"
        await od.commlogs.update(log.CommlogNum, Note="called back")
        assert (await od.commlogs.get(log.CommlogNum)).Note == "called back"
        changed = await od.commlogs.list(PatNum=pat.PatNum, DateTStamp=start).collect()
        assert log.CommlogNum in [c.CommlogNum for c in changed]

        proc = (await od.procedurelogs.list(ProcStatus="TP").first_page())[0]
        await od.procedurelogs.delete(proc.ProcNum)
        with pytest.raises(NotFound):
            await od.procedurelogs.get(proc.ProcNum)


@module_loop
async def test_appointment_actions(emu) -> None:
    async with session(emu, "local") as od:
        appt = (await od.appointments.list(AptStatus="Scheduled").first_page())[0]
        before = appt.Note
        await od.appointments.Note(appt.AptNum, Note="late")
        after = await od.appointments.get(appt.AptNum)
        assert after.Note.endswith("late") and len(after.Note) >= len(before)


@module_loop
async def test_server_errors_carry_the_explanation(emu) -> None:
    async with session(emu, "local") as od:
        with pytest.raises(NotFound) as err:
            await od.patients.get(99_999_999)
        assert err.value.explanation
        with pytest.raises(BadRequest, match="not a valid parameter"):
            await od.request("GET", "/patients", params={"Bogus": 1})
        with pytest.raises(InvalidParameter):
            od.patients.list(Bogus=1)  # type: ignore[call-arg]  # what the test is about


@module_loop
async def test_wrong_key_is_unauthorized_and_no_key_leaks(emu, caplog) -> None:
    # Real sockets, so httpx2/httpcore2 log their own DEBUG lines too.
    caplog.set_level(logging.DEBUG)
    od = OpenDental(DEV, "not-a-key", endpoints=emu.endpoints, modes=("local",), hub=Hub())
    async with od:
        with pytest.raises(Unauthorized) as err:
            await od.patients.get(1)
    exc = err.value
    assert exc.explanation  # the server's reason is kept
    blob = "\n".join([str(exc), repr(exc), "".join(traceback.format_exception(exc)), caplog.text, repr(od)])
    assert "/patients/1" in caplog.text  # the DEBUG log did record the failing request
    assert "not-a-key" not in blob and DEV not in blob


@pytest.mark.slow("runs pytest on a user's test file in a subprocess (7 s under coverage and load)")
def test_pytest_plugin_gives_users_a_session_on_the_emulator(pytester) -> None:
    pytester.makeini("[pytest]\nasyncio_mode = auto\nasyncio_default_fixture_loop_scope = function\n")
    pytester.makepyfile(
        """
        async def test_uses_the_fixtures(od_session, od_emulator):
            pat = await od_session.patients.get(1)
            assert pat.PatNum == 1
            rows = await od_session.appointments.list(PatNum=1).collect()
            assert all(r.PatNum == 1 for r in rows)
            assert od_emulator.endpoints["local"].startswith("http://127.0.0.1:")
        """
    )
    result = pytester.runpytest_subprocess("-q")
    result.assert_outcomes(passed=1)
