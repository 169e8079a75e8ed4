"""Handlers never wait for an unrelated record (issue 21, case 4).

Before, records were hashed onto ``concurrency`` lanes and a lane slept through its record's retries (and sat
in a hanging handler up to ``handler_timeout``), so every record sharing the lane waited: of 16 appointments
sent after 3 always-failing patients, a third waited 2.1 s, until the patient gave up. Now a record waiting for
a retry holds no worker, and a hanging handler holds one worker and its own record's later events only.

No clock thresholds: each test checks that every other record was handled *while* the failing or hanging
record was still between its attempts (it had not given up yet).
"""

from __future__ import annotations

import json

import anyio

from odapi_async.events import Event, EventReceiver, SQLiteEventStore

KEY = "VzkmZEaUWOjnQX2z"
APPOINTMENTS = {"Authorization": KEY, "Workstation": "W1", "Event-Type": "WatchTable: Appointment"}
PATIENTS = {"Authorization": KEY, "Workstation": "W1", "Event-Type": "WatchTable: Patient"}


def appointments(*nums: int, note: str = "") -> bytes:
    return json.dumps(
        [{"AptNum": n, "PatNum": 1, "Note": note, "DateTStamp": "2024-05-03 08:30:12"} for n in nums]
    ).encode()


def patients(*nums: int, name: str = "A") -> bytes:
    return json.dumps(
        [{"PatNum": n, "LName": name, "DateTStamp": "2024-05-03 08:30:12"} for n in nums]
    ).encode()


async def test_a_record_whose_handler_always_fails_holds_back_no_other_record(tmp_path) -> None:
    receiver = EventReceiver(
        [KEY], retries=3, retry_backoff=0.3, concurrency=8, store=SQLiteEventStore(tmp_path / "ev.db")
    )
    handled: set[int] = set()
    all_handled = anyio.Event()
    failing_attempts = 0
    gave_up_when_all_handled: int | None = None

    @receiver.on("Patient")
    async def always_fails(event: Event) -> None:
        nonlocal failing_attempts
        failing_attempts += 1
        raise RuntimeError("the chart service is down")

    @receiver.on("Appointment")
    async def fine(event: Event) -> None:
        nonlocal gave_up_when_all_handled
        handled.add(event.row.AptNum)
        if len(handled) == 16:
            gave_up_when_all_handled = receiver.stats["failed"]
            all_handled.set()

    async with receiver:
        assert (await receiver.handle(PATIENTS, patients(1, 2, 3)))[0] == 200
        assert (await receiver.handle(APPOINTMENTS, appointments(*range(100, 116))))[0] == 200
        with anyio.fail_after(10):
            await all_handled.wait()
        with anyio.fail_after(10):
            await receiver.join()
    # Every appointment was handled before any patient gave up (0 failed then); then each patient ran
    # 1 + 3 attempts and failed alone.
    assert gave_up_when_all_handled == 0
    assert failing_attempts == 12 and receiver.stats["failed"] == 3 and receiver.stats["handled"] == 16


async def test_a_hanging_handler_holds_only_its_own_record() -> None:
    receiver = EventReceiver([KEY], handler_timeout=3.0, retries=1, retry_backoff=0.05, concurrency=4)
    hanging = anyio.Event()
    hangs_ended = 0
    handled: list[int] = []
    all_handled = anyio.Event()
    hangs_ended_when_all_handled: int | None = None
    patient_calls: list[str] = []

    @receiver.on("Patient")
    async def hangs_on_the_first(event: Event) -> None:
        nonlocal hangs_ended
        patient_calls.append(event.row.LName)
        if event.row.LName == "first":
            hanging.set()
            try:
                await anyio.sleep_forever()
            finally:
                hangs_ended += 1

    @receiver.on("Appointment")
    async def fine(event: Event) -> None:
        nonlocal hangs_ended_when_all_handled
        handled.append(event.row.AptNum)
        if len(handled) == 16:
            hangs_ended_when_all_handled = hangs_ended
            all_handled.set()

    async with receiver:
        await receiver.handle(PATIENTS, patients(1, name="first"))
        with anyio.fail_after(5):
            await hanging.wait()
        await receiver.handle(PATIENTS, patients(1, name="second"))  # the same record: waits for the first
        await receiver.handle(APPOINTMENTS, appointments(*range(100, 108)))
        await receiver.handle(APPOINTMENTS, appointments(*range(108, 116)))
        with anyio.fail_after(10):
            await all_handled.wait()
        assert hangs_ended_when_all_handled == 0  # all 16 handled during the first attempt's hang
        assert patient_calls == ["first"]  # the patient's next change waits for its own record
        with anyio.fail_after(15):
            await receiver.join()
    # The hang was cut at handler_timeout, tried once more (hung again), then given up; then "second" ran.
    assert hangs_ended == 2 and patient_calls == ["first", "first", "second"]
    assert receiver.stats["failed"] == 1 and receiver.stats["handled"] == 17


async def test_a_retried_change_still_goes_before_the_records_next_change() -> None:
    receiver = EventReceiver([KEY], retries=2, retry_backoff=0.01, concurrency=2)
    calls: list[str] = []

    @receiver.on("Appointment")
    async def flaky_first(event: Event) -> None:
        calls.append(event.row.Note)
        if event.row.Note == "1" and calls.count("1") < 3:
            raise RuntimeError("not yet")

    async with receiver:
        await receiver.handle(APPOINTMENTS, appointments(18, note="1"))
        await receiver.handle(APPOINTMENTS, appointments(18, note="2"))
        with anyio.fail_after(10):
            await receiver.join()
    assert calls == ["1", "1", "1", "2"]
    assert receiver.stats["handled"] == 2 and receiver.stats["failed"] == 0
