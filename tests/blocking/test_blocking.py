"""The blocking client: plain calls and iteration, 8 threads on one Remote key, closing, misuse."""

from __future__ import annotations

import threading
from collections.abc import Generator

import pytest
from emulators import emulator_fixture

from odapi_async import Hub, SessionClosed
from odapi_async.blocking import OpenDental
from odapi_async.emulator import Emulator
from odapi_async.resources._generated.patients import Patient

pytestmark = [pytest.mark.integration]

INTERVAL = 0.05


# The emulator runs on a loop of its own (a thread), as a real server would: the test itself is blocking code.
emu = emulator_fixture(
    thread=True,
    seed=4,
    patients=250,
    developer_key="dev",
    customer_keys={"cust-b": "full"},
    intervals={"full": INTERVAL},
    fractional_retry_after=True,
)


def blocking(emu: Emulator, mode: str = "local", **kw) -> OpenDental:
    return OpenDental(
        "dev",
        "cust-b",
        endpoints=emu.endpoints,
        modes=(mode,),
        tier="full",
        intervals={"full": INTERVAL},
        hub=Hub(),
        **kw,
    )


def test_calls_and_lists_without_await(emu) -> None:
    with blocking(emu) as od:
        expected = [p.PatNum for p in od.patients.list().collect()]
        assert len(expected) > 200
        assert "blocking OpenDental" in repr(od) and "cust-b" not in repr(od)
        patient = od.patients.get(expected[0])
        assert isinstance(patient, Patient) and patient.PatNum == expected[0]
        assert [p.PatNum for p in od.patients.list(Limit=100)] == expected  # a plain for, over 3 pages
        assert [p.PatNum for p in od.patients.list().take(7)] == expected[:7]
        assert len(od.patients.list().collect(max_rows=120)) == 120
        first = od.patients.list().first()
        assert first is not None and first.PatNum == expected[0]
        assert od.request("GET", f"/patients/{expected[1]}", cast_to=Patient).PatNum == expected[1]
        assert od.with_raw_response.request("GET", f"/patients/{expected[1]}").status_code == 200
        assert od.with_options(priority="interactive").patients.get(expected[2]).PatNum == expected[2]
        assert od.throttle_stats()["local"].requests >= 7
    with pytest.raises(SessionClosed):
        od.patients.get(1)


def test_breaking_out_of_a_for_loop_closes_the_stream(emu) -> None:
    with blocking(emu) as od:
        pages = od.patients.list(Limit=50).pages()
        assert isinstance(pages, Generator)  # typed as an Iterator; a generator, so it can be closed
        first = next(pages)
        pages.close()  # what a ``break`` does when the generator is collected
        assert len(first) == 50
        assert od.patients.get(first[0].PatNum).PatNum == first[0].PatNum


def test_eight_threads_on_one_remote_key_never_break_the_interval(emu) -> None:
    before = emu.stats()["listeners"]["remote"]
    errors: list[BaseException] = []
    with blocking(emu, "remote") as od:

        def work(n: int) -> None:
            try:
                for i in range(4):
                    od.patients.get(1 + (n * 4 + i) % 200)
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        stats = od.throttle_stats()["remote"]
    after = emu.stats()["listeners"]["remote"]
    assert not errors and not any(t.is_alive() for t in threads)
    assert after["requests"] - before["requests"] == 32 == stats.requests
    assert after["violations"] == before["violations"]  # the server saw every start spaced by the interval
    assert stats.throttle_answers == 0


async def test_refuses_to_block_a_running_loop(emu) -> None:
    od = blocking(emu)
    with pytest.raises(RuntimeError, match="running event loop"):
        od.patients.get(1)
