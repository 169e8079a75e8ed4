"""The cascade against the emulator's three listeners over real sockets: pick, fail over, fail back, never twice."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest
from emulators import emulator_fixture

from odapi_async import Hub, OpenDental, OutcomeUnknown, Unauthorized

pytestmark = pytest.mark.integration

KEYS = {"k1": "full"}
FAST = {"full": 0.002, "read_all": 0.01}


emu = emulator_fixture(
    thread=True, seed=3, patients=1800, developer_key="dev", customer_keys=KEYS, intervals=FAST
)


@pytest.fixture
async def all_up(emu: Any) -> AsyncIterator[Any]:
    """Every listener up and fault-free before and after the test."""
    for name in ("local", "service", "remote"):
        await emu.start_listener(name)
    emu.clear_faults()
    emu.reset_stats()
    yield emu
    emu.clear_faults()
    for name in ("local", "service", "remote"):
        await emu.start_listener(name)


def session(emu: Any, **kw: Any) -> OpenDental:
    kw.setdefault("modes", ("local", "service", "remote"))
    kw.setdefault("intervals", FAST)
    return OpenDental("dev", kw.pop("key", "k1"), endpoints=emu.endpoints, hub=Hub(), tier="full", **kw)


def listener_requests(emu: Any, name: str) -> int:
    return int(emu.stats()["listeners"][name]["requests"])


async def test_the_cascade_picks_the_first_mode_that_answers(all_up: Any) -> None:
    emu = all_up
    async with session(emu) as od:
        assert (await od.patients.get(1)).PatNum == 1 and od.mode == "local"
    emu.stop_listener("local")
    async with session(emu) as od:
        await od.patients.get(1)
        assert od.mode == "service"
    emu.stop_listener("service")
    async with session(emu) as od:
        await od.patients.get(1)
        assert od.mode == "remote"


async def test_a_wrong_key_is_raised_on_the_first_mode_not_cascaded(all_up: Any) -> None:
    emu = all_up
    async with session(emu, key="not-a-key") as od:
        with pytest.raises(Unauthorized) as err:
            await od.patients.get(1)
    assert err.value.mode == "local"
    assert listener_requests(emu, "service") == listener_requests(emu, "remote") == 0


async def test_a_stream_that_loses_its_mode_finishes_on_the_next_exactly(all_up: Any) -> None:
    emu = all_up
    expected = [row[0] for row in emu.db.execute("SELECT ProcNum FROM procedurelogs ORDER BY ProcNum")]
    assert len(expected) >= 20_000
    seen: list[int] = []
    async with session(emu, modes=("local", "remote")) as od:
        async for page in od.procedurelogs.list().pages():
            seen.extend(row.ProcNum for row in page)
            if len(seen) >= 5000 and od.mode == "local":
                emu.stop_listener("local")  # the desktop program closed mid-stream
        assert od.mode == "remote"
    assert seen == expected  # every row, once, in order, across the change of page size (1000 -> 100)
    assert listener_requests(emu, "remote") > 0


async def test_failback_returns_to_local_when_it_answers_again(
    all_up: Any, caplog: pytest.LogCaptureFixture
) -> None:
    emu = all_up
    emu.stop_listener("local")
    with caplog.at_level(logging.WARNING, logger="odapi_async"):
        async with session(emu, modes=("local", "remote"), failback_interval=0.05) as od:
            await od.patients.get(1)
            assert od.mode == "remote"
            await emu.start_listener("local")
            with anyio.fail_after(10):
                while od.mode != "local":
                    await od.patients.get(1)  # requests carry on meanwhile; the probe runs beside them
                    await asyncio.sleep(0.01)
            await od.patients.get(1)
    changes = [r.getMessage() for r in caplog.records if "now using" in r.getMessage()]
    assert len(changes) == 2 and "k1" not in " ".join(changes)  # one per change, keys never named


async def test_a_post_whose_connection_was_refused_fails_over_and_is_stored_once(all_up: Any) -> None:
    emu = all_up
    emu.stop_listener("local")
    async with session(emu, modes=("local", "remote")) as od:
        made = await od.commlogs.create(PatNum=1, Note="refused-then-remote")
    rows = emu.db.execute("SELECT COUNT(*) FROM commlogs WHERE Note = 'refused-then-remote'").fetchone()[0]
    assert rows == 1 and made.CommlogNum > 0 and od.mode == "remote"


async def test_a_post_cut_after_it_left_is_sent_nowhere_else(all_up: Any) -> None:
    emu = all_up
    emu.set_faults("local", rate_reset_after=1.0)  # the server runs it, then the answer is lost
    async with session(emu, modes=("local", "remote")) as od:
        with pytest.raises(OutcomeUnknown):
            await od.commlogs.create(PatNum=1, Note="cut-after-leaving")
    rows = emu.db.execute("SELECT COUNT(*) FROM commlogs WHERE Note = 'cut-after-leaving'").fetchone()[0]
    assert rows == 1  # it ran once, on local
    assert listener_requests(emu, "local") == 1 and listener_requests(emu, "remote") == 0


async def test_probe_reports_each_mode_and_moves_down(all_up: Any) -> None:
    emu = all_up
    async with session(emu) as od:
        report = await od.probe()
        assert report["local"].reachable and report["local"].in_use and report["local"].page_cap == 1000
        assert report["local"].round_trip is not None and report["local"].round_trip < 5
        assert report["remote"].reachable is None and report["remote"].page_cap == 100  # never probed
        assert listener_requests(emu, "remote") == 0
        emu.stop_listener("local")
        report = await od.probe()
        assert report["local"].reachable is False and report["local"].error
        assert od.mode == "service" and report["service"].in_use
