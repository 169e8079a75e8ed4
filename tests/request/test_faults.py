"""The SDK under the emulator's injected faults, over real sockets: no row lost or doubled, no write repeated."""

from __future__ import annotations

import pytest
from emulators import emulator_fixture

from odapi_async import BadRequest, Hub, OpenDental, TransportError
from odapi_async.emulator import Emulator
from support import fast_retries

pytestmark = [pytest.mark.integration]
module_loop = pytest.mark.asyncio(loop_scope="module")

DEV = "dev-faults"
KEYS = {"cust-f": "full"}


emu = emulator_fixture(seed=3, patients=400, developer_key=DEV, customer_keys=KEYS)


def session(emu: Emulator, max_retries: int) -> OpenDental:
    od = OpenDental(
        DEV, "cust-f", endpoints=emu.endpoints, modes=("local",), max_retries=max_retries, hub=Hub()
    )
    return fast_retries(od)


def faults_injected(emu: Emulator) -> dict[str, int]:
    return dict(emu.stats()["listeners"]["local"]["faults"])


@module_loop
async def test_stream_survives_504s_resets_and_econnector_restarts(emu) -> None:
    expected = [r[0] for r in emu.db.execute("SELECT AptNum FROM appointments ORDER BY AptNum")]
    before = faults_injected(emu)
    emu.set_faults("local", rate_504=0.15, rate_reset=0.15, rate_econnector=0.1)
    try:
        async with session(emu, max_retries=10) as od:
            got = [a.AptNum async for a in od.appointments.list(Limit=100)]
    finally:
        emu.clear_faults("local")
    after = faults_injected(emu)
    assert got == expected  # every row once, in order, although pages failed on the way
    for fault in ("504", "reset", "econnector"):
        assert after[fault] > before[fault], f"no {fault} was injected: the test proved nothing"


@module_loop
async def test_a_post_cut_off_by_a_reset_is_not_sent_again(emu) -> None:
    emu.set_faults("local", rate_reset=0.5)
    ok = failed = 0
    requests_before = emu.stats()["listeners"]["local"]["requests"]
    try:
        async with session(emu, max_retries=5) as od:
            for i in range(30):
                try:
                    await od.commlogs.create(PatNum=1, Note=f"fault-test-{i}")
                    ok += 1
                except TransportError:
                    failed += 1
    finally:
        emu.clear_faults("local")
    sent = emu.stats()["listeners"]["local"]["requests"] - requests_before
    stored = emu.db.execute("SELECT count(*) FROM commlogs WHERE Note LIKE 'fault-test-%'").fetchone()[0]
    assert ok and failed  # both outcomes happened
    assert sent == 30  # one attempt each: a POST that may have reached the server is never repeated
    assert stored == ok  # nothing written twice (a reset request was never executed), nothing lost


@module_loop
async def test_econnector_down_surfaces_for_a_post(emu) -> None:
    emu.set_faults("local", rate_econnector=1.0)
    requests_before = emu.stats()["listeners"]["local"]["requests"]
    try:
        async with session(emu, max_retries=5) as od:
            with pytest.raises(BadRequest, match="(?i)econnector"):
                await od.commlogs.create(PatNum=1, Note="never")
    finally:
        emu.clear_faults("local")
    assert (
        emu.stats()["listeners"]["local"]["requests"] - requests_before == 1
    )  # a POST is not retried on a 400
