"""The receiver's decisions, through its framework-free core ``handle(headers, body)``."""

from __future__ import annotations

import datetime as dt
import json
import logging

import anyio
import pytest

from odapi_async.events import (
    Event,
    EventReceiver,
    MemoryEventStore,
    PatientSelected,
    SQLiteEventStore,
)
from odapi_async.resources import Appointment, Operatory

KEY = "VzkmZEaUWOjnQX2z"
HEADERS = {"Authorization": KEY, "Workstation": "MOLLYR", "Event-Type": "WatchTable: Appointment"}

# The docs' example row (apievents.md), as Open Dental sends it.
DOC_ROW = {
    "AptNum": 18, "PatNum": 17, "AptStatus": "Scheduled", "Pattern": "//XXXX//", "Confirmed": 19,
    "confirmed": "Not Called", "TimeLocked": "false", "Op": 3, "Note": "", "ProvNum": 1, "provAbbr": "DOC1",
    "ProvHyg": 0, "AptDateTime": "2020-07-31 08:30:00", "NextAptNum": 0, "UnschedStatus": 0,
    "unschedStatus": "", "IsNewPatient": "false", "ProcDescript": "Seal, Seal", "ClinicNum": 0,
    "IsHygiene": "false", "DateTStamp": "2021-05-03 08:30:12", "DateTimeArrived": "0001-01-01 00:00:00",
    "DateTimeSeated": "0001-01-01 00:00:00", "DateTimeDismissed": "0001-01-01 00:00:00", "InsPlan1": 3,
    "InsPlan2": 0, "DateTimeAskedToArrive": "0001-01-01 00:00:00", "colorOverride": "0,0,0",
    "AppointmentTypeNum": 0, "SecDateTEntry": "2020-07-04 09:12:05", "Priority": "Normal",
    "PatternSecondary": "XX////XX", "ItemOrderPlanned": 0,
}  # fmt: skip


def rows(*changes: dict) -> bytes:
    return json.dumps([{**DOC_ROW, **c} for c in changes]).encode()


def collecting(receiver: EventReceiver, table: str = "Appointment") -> list[Event]:
    got: list[Event] = []

    @receiver.on(table)
    async def handler(event: Event) -> None:
        got.append(event)

    return got


async def join(receiver: EventReceiver) -> None:
    with anyio.fail_after(10):
        await receiver.join()


async def test_docs_example_decodes_into_the_generated_model() -> None:
    receiver = EventReceiver([KEY])
    got = collecting(receiver)
    async with receiver:
        assert await receiver.handle(HEADERS, rows({})) == (200, "OK: 1 new, 0 duplicate.")
        await join(receiver)
    [event] = got
    assert isinstance(event.row, Appointment)
    assert event.row.AptNum == 18 and event.row.TimeLocked is False and event.row.DateTimeArrived is None
    assert event.row.DateTStamp == dt.datetime(2021, 5, 3, 8, 30, 12)
    assert event.workstation == "MOLLYR" and event.type == "Appointment"
    assert event.received_at.tzinfo is not None


async def test_duplicates_across_workstations_and_spellings_are_dropped() -> None:
    receiver = EventReceiver([KEY])
    got = collecting(receiver)
    async with receiver:
        await receiver.handle(HEADERS, rows({}, {"AptNum": 19}))
        # another workstation, other boolean spelling, other key order, a serverDateTime: the same rows
        other = [
            {**dict(reversed(list(DOC_ROW.items()))), "TimeLocked": "False", "serverDateTime": "2021-05-03"}
        ]
        status, text = await receiver.handle({**HEADERS, "Workstation": "FRONT"}, json.dumps(other).encode())
        assert (status, text) == (200, "OK: 0 new, 1 duplicate.")
        # a later change of row 18 (new DateTStamp) and a change within the same second are new
        await receiver.handle(HEADERS, rows({"DateTStamp": "2021-05-03 08:31:00"}))
        await receiver.handle(HEADERS, rows({"DateTStamp": "2021-05-03 08:31:00", "Note": "late"}))
        await join(receiver)
    # rows 18 and 19 run in their own lanes; the changes of row 18 in the order they came
    assert [(e.row.DateTStamp.minute, e.row.Note) for e in got if e.row.AptNum == 18] == [
        (30, ""),
        (31, ""),
        (31, "late"),
    ]
    assert [e.row.AptNum for e in got].count(19) == 1
    assert receiver.stats["duplicates"] == 1


async def test_offices_are_told_apart_and_never_deduplicated_against_each_other() -> None:
    receiver = EventReceiver({"north": KEY, "south": "another-key-1234"})
    got = collecting(receiver)
    async with receiver:
        await receiver.handle(HEADERS, rows({}))
        await receiver.handle({**HEADERS, "Authorization": "another-key-1234"}, rows({}))
        await join(receiver)
    assert sorted(e.office for e in got) == ["north", "south"]


@pytest.mark.parametrize(
    ("headers", "body", "status", "reason"),
    [
        ({**HEADERS, "Authorization": KEY[:-1]}, b"[]", 401, "Unauthorized"),
        ({**HEADERS, "Authorization": ""}, b"[]", 401, "Unauthorized"),
        ({"Authorization": KEY}, b"[]", 400, "Event-Type"),
        ({**HEADERS, "Event-Type": "Appointment"}, b"[]", 400, "Event-Type"),
        (HEADERS, b"[{", 400, "JSON"),
        (HEADERS, b'[{"AptNum": "x"}]', 400, "Appointment"),
        (HEADERS, b'"text"', 400, "Appointment"),
    ],
)
async def test_refusals_keep_nothing(headers, body, status, reason) -> None:
    receiver = EventReceiver([KEY])
    got = collecting(receiver)
    async with receiver:
        answer = await receiver.handle(headers, body)
        await join(receiver)
    assert answer[0] == status and reason in answer[1]
    assert got == [] and receiver.stats["new"] == 0


async def test_offices_without_event_type_header_use_the_urls_type() -> None:
    receiver = EventReceiver([KEY])
    got = collecting(receiver)
    async with receiver:
        old_office = {"Authorization": KEY, "Workstation": "MOLLYR"}  # before 22.4.35: no Event-Type
        assert (await receiver.handle(old_office, rows({}), event_type="WatchTable: Appointment"))[0] == 200
        await join(receiver)
    assert isinstance(got[0].row, Appointment)


async def test_a_batch_with_one_bad_row_is_refused_whole() -> None:
    receiver = EventReceiver([KEY])
    got = collecting(receiver)
    async with receiver:
        body = json.dumps([DOC_ROW, {**DOC_ROW, "AptNum": 19, "Op": "three"}]).encode()
        status, _ = await receiver.handle(HEADERS, body)
        assert status == 400
        assert (await receiver.handle(HEADERS, rows({})))[1] == "OK: 1 new, 0 duplicate."  # row 18 not kept
        await join(receiver)
    assert len(got) == 1


async def test_oversized_body_is_refused_before_reading_it() -> None:
    receiver = EventReceiver([KEY], max_body_bytes=100)
    async with receiver:
        status, text = await receiver.handle(HEADERS, rows({}))
    assert status == 400 and "larger than 100 bytes" in text


async def test_not_running_answers_503_and_keeps_nothing() -> None:
    receiver = EventReceiver([KEY])
    collecting(receiver)
    assert (await receiver.handle(HEADERS, rows({})))[0] == 503
    async with receiver:
        assert (await receiver.handle(HEADERS, rows({})))[0] == 200  # not marked seen by the refusal


async def test_full_queue_answers_503_so_the_office_resends() -> None:
    receiver = EventReceiver([KEY], store=MemoryEventStore(max_queued=2))
    release = anyio.Event()

    @receiver.on("Appointment")
    async def blocked(event: Event) -> None:
        await release.wait()

    async with receiver:
        assert (await receiver.handle(HEADERS, rows({}, {"AptNum": 19})))[0] == 200
        status, text = await receiver.handle(HEADERS, rows({"AptNum": 20}))
        assert status == 503 and "full" in text
        release.set()
        await join(receiver)
        assert (await receiver.handle(HEADERS, rows({"AptNum": 20})))[1] == "OK: 1 new, 0 duplicate."


async def test_memory_store_bounds_its_keys(caplog) -> None:
    store = MemoryEventStore(max_keys=3)
    receiver = EventReceiver([KEY], store=store)
    collecting(receiver)
    async with receiver:
        with caplog.at_level(logging.WARNING, logger="odapi_async.events"):
            for n in range(5):
                await receiver.handle(HEADERS, rows({"AptNum": n}))
    assert len(store._seen) == 3
    assert sum("dedupe store is full" in r.message for r in caplog.records) == 1


async def test_ui_event_decodes_into_its_own_model() -> None:
    receiver = EventReceiver([KEY])
    got = collecting(receiver, "unused")
    selected: list[Event] = []
    receiver.on_ui("PatientSelected")(_append_to(selected))
    body = json.dumps(
        {"PatNum": 28, "LName": "Harrison", "Birthdate": "1986-11-06", "ClinicNum": "1"}
    ).encode()
    async with receiver:
        headers = {
            "Authorization": KEY,
            "Event-Type": "UiEventType: PatientSelected",
            "Workstation": "MOLLYR",
        }
        assert (await receiver.handle(headers, body))[0] == 200
        await join(receiver)
    [event] = selected
    assert isinstance(event.row, PatientSelected) and event.row.ClinicNum == 1
    assert event.row.Birthdate == dt.date(1986, 11, 6) and got == []


async def test_unknown_types_are_delivered_raw_and_logged_once(caplog) -> None:
    receiver = EventReceiver([KEY])
    got = collecting(receiver, "Recall")
    headers = {**HEADERS, "Event-Type": "WatchTable: Recall"}
    async with receiver:
        with caplog.at_level(logging.WARNING, logger="odapi_async.events"):
            await receiver.handle(headers, b'[{"RecallNum": 1}]')
            await receiver.handle(headers, b'[{"RecallNum": 2}]')
            await receiver.handle(headers, b'[{"RecallNum": 2}]')
        await join(receiver)
    assert [e.row for e in got] == [{"RecallNum": 1}, {"RecallNum": 2}]
    assert sum("Recall" in r.message for r in caplog.records) == 1


async def test_other_documented_tables_and_deleted_appointments() -> None:
    receiver = EventReceiver([KEY])
    ops = collecting(receiver, "Operatory")
    deleted = collecting(receiver, "AppointmentDeleted")
    async with receiver:
        op = {**HEADERS, "Event-Type": "WatchTable: Operatory"}
        await receiver.handle(op, b'[{"OperatoryNum": 3, "OpName": "Op 3", "IsHidden": "false"}]')
        gone = {**HEADERS, "Event-Type": "WatchTable: AppointmentDeleted"}
        await receiver.handle(gone, rows({}))
        await join(receiver)
    assert isinstance(ops[0].row, Operatory) and ops[0].row.OpName == "Op 3"
    assert isinstance(deleted[0].row, Appointment) and deleted[0].row.AptNum == 18


async def test_rows_without_a_handler_are_acknowledged_not_queued() -> None:
    receiver = EventReceiver([KEY])
    async with receiver:
        assert (await receiver.handle(HEADERS, rows({})))[0] == 200
        assert receiver.store.outstanding() == 0


async def test_a_failing_handler_is_retried_then_marked_failed(tmp_path, caplog) -> None:
    store = SQLiteEventStore(tmp_path / "ev.db")
    receiver = EventReceiver([KEY], store=store, retries=2, retry_backoff=0.001)
    calls: list[int] = []

    @receiver.on("Appointment")
    async def flaky(event: Event) -> None:
        calls.append(event.row.AptNum)
        if event.row.AptNum == 18:
            raise RuntimeError("patient Harrison Bradley has no chart")  # text with patient data

    async with receiver:
        with caplog.at_level(logging.ERROR, logger="odapi_async.events"):
            await receiver.handle(HEADERS, rows({}, {"AptNum": 19}))
            await join(receiver)
        [failed] = await store.failed_events()
    assert calls.count(18) == 3 and calls.count(19) == 1
    assert failed.row.AptNum == 18 and receiver.stats["failed"] == 1
    assert "RuntimeError" in caplog.text and "Harrison" not in caplog.text


async def test_a_handler_that_hangs_is_bounded_by_its_timeout() -> None:
    receiver = EventReceiver([KEY], handler_timeout=0.05, retries=0)
    never = anyio.Event()

    @receiver.on("Appointment")
    async def hangs(event: Event) -> None:
        await never.wait()

    async with receiver:
        await receiver.handle(HEADERS, rows({}))
        await join(receiver)
    assert receiver.stats["failed"] == 1


async def test_changes_of_one_row_run_in_order_others_in_parallel() -> None:
    receiver = EventReceiver([KEY], concurrency=4)
    order: list[tuple[int, str]] = []
    first_started = anyio.Event()
    other_done = anyio.Event()

    @receiver.on("Appointment")
    async def handler(event: Event) -> None:
        if event.row.AptNum == 18 and event.row.Note == "1":
            first_started.set()
            with anyio.fail_after(5):
                await other_done.wait()  # a different row finishes meanwhile: lanes run in parallel
        if event.row.AptNum != 18:
            other_done.set()
        order.append((event.row.AptNum, event.row.Note))

    async with receiver:
        await receiver.handle(HEADERS, rows({"Note": "1"}, {"Note": "2"}, {"Note": "3"}))
        with anyio.fail_after(5):
            await first_started.wait()
        for n in range(19, 40):  # some of these land in other lanes than row 18
            await receiver.handle(HEADERS, rows({"AptNum": n}))
        await join(receiver)
    mine = [note for apt, note in order if apt == 18]
    assert mine == ["1", "2", "3"]
    assert order.index((18, "1")) > 0  # something else finished before the first change of row 18


def test_keys_stay_out_of_reprs_and_bad_configs_are_refused() -> None:
    receiver = EventReceiver({"north": KEY})
    assert KEY not in repr(receiver) and KEY not in repr(receiver.store)
    assert "office-" in EventReceiver([KEY])._keys[0][0] and KEY not in EventReceiver([KEY])._keys[0][0]
    with pytest.raises(ValueError):
        EventReceiver([])
    with pytest.raises(TypeError):
        EventReceiver(KEY)  # one string is not a list of keys
    with pytest.raises(ValueError):
        EventReceiver([" "])
    with pytest.raises(ValueError):
        EventReceiver([KEY], concurrency=0)


async def test_keys_never_reach_the_log(caplog) -> None:
    receiver = EventReceiver({"north": KEY})
    with caplog.at_level(logging.DEBUG):
        await receiver.handle(HEADERS, rows({}))  # not running: logged refusal
        async with receiver:
            await receiver.handle({**HEADERS, "Authorization": KEY + "x"}, rows({}))
            await receiver.handle({**HEADERS, "Event-Type": "WatchTable: Brand"}, b"[{}]")
            await receiver.handle(HEADERS, rows({}))
    assert caplog.records and KEY not in caplog.text


def test_public_names() -> None:
    import odapi_async.events as events

    assert len(set(events.__all__)) == len(events.__all__)
    public = {n for n in dir(events) if not n.startswith("_")} - {"annotations"}
    modules = {n for n in public if type(getattr(events, n)).__name__ == "module"}
    assert set(events.__all__) == public - modules


def test_event_repr_shows_no_row_data() -> None:
    event = Event("WatchTable", "Patient", {"LName": "Harrison"}, "north", "MOLLYR", dt.datetime.now())
    assert "Harrison" not in repr(event)


async def test_sqlite_store_keeps_queue_and_keys_across_a_restart(tmp_path) -> None:
    path = tmp_path / "ev.db"
    first = EventReceiver([KEY], store=SQLiteEventStore(path), drain_timeout=0)
    stuck = anyio.Event()

    @first.on("Appointment")
    async def stuck_handler(event: Event) -> None:
        await stuck.wait()

    async with first:
        await first.handle(HEADERS, rows({}, {"AptNum": 19}))
    second = EventReceiver([KEY], store=SQLiteEventStore(path))
    got = collecting(second)
    async with second:
        assert (await second.handle(HEADERS, rows({})))[1] == "OK: 0 new, 1 duplicate."
        await join(second)
    assert sorted(e.row.AptNum for e in got) == [18, 19]
    assert all(isinstance(e.row, Appointment) and e.seq > 0 for e in got)
    assert got[0].row.DateTimeArrived is None and got[0].row.TimeLocked is False


def _append_to(out: list):
    async def handler(event: Event) -> None:
        out.append(event)

    return handler
