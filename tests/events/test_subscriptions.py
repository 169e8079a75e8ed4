"""Subscriptions on the emulator through the SDK: per customer key, documented checks, ``ensure_subscriptions``;
and what fires for tables without a change stamp, for deletions, for expired and unserved subscriptions."""

from __future__ import annotations

import datetime as dt

import pytest
from conftest import KEY, OTHER_KEY, serve
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Mount, Route
from test_events_emulator import _session, join

from odapi_async import BadRequest, NotFound
from odapi_async.events import Event, EventReceiver, SubscriptionSpec, ensure_subscriptions
from odapi_async.resources import Appointment, Operatory

pytestmark = [pytest.mark.integration]
URL = "http://127.0.0.1:9/events"


async def test_subscriptions_belong_to_their_customer_key(emu, od) -> None:
    mine = await od.subscriptions.create(
        EndPointUrl=URL, Workstation="", WatchTable="Patient", PollingSeconds=5
    )
    assert mine.CustomerKey == KEY and mine.DateTimeStart is not None and mine.DateTimeStop is None
    async with _session(emu, OTHER_KEY) as other:
        assert await other.subscriptions.list().collect() == []
        with pytest.raises(NotFound):
            await other.subscriptions.delete(mine.SubscriptionNum)
        with pytest.raises(NotFound):
            await other.subscriptions.update(mine.SubscriptionNum, Note="not yours")
    [listed] = await od.subscriptions.list().collect()
    assert listed.SubscriptionNum == mine.SubscriptionNum and listed.WatchTable == "Patient"


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"WatchTable": "Appointment"}, "PollingSeconds"),
        ({"WatchTable": "Recall", "PollingSeconds": 5}, "WatchTable"),
        ({"UiEventType": "PatientClicked"}, "UiEventType"),
        ({"WatchTable": "Appointment", "PollingSeconds": 5, "UiEventType": "PatientSelected"}, "either"),
        ({}, "either"),
    ],
)
async def test_subscription_create_is_checked_like_the_docs(od, body, reason) -> None:
    with pytest.raises(BadRequest) as err:
        await od.subscriptions.create(EndPointUrl=URL, Workstation="", **body)
    assert reason in str(err.value)


async def test_polling_seconds_only_for_database_subscriptions(od) -> None:
    ui = await od.subscriptions.create(EndPointUrl=URL, Workstation="", UiEventType="PatientSelected")
    with pytest.raises(BadRequest):
        await od.subscriptions.update(ui.SubscriptionNum, PollingSeconds=5)


async def test_ensure_subscriptions_creates_updates_and_prunes(od) -> None:
    keep = await od.subscriptions.create(
        EndPointUrl=URL, Workstation="", WatchTable="Patient", PollingSeconds=5
    )
    stale = await od.subscriptions.create(
        EndPointUrl=URL, Workstation="", WatchTable="Schedule", PollingSeconds=5
    )
    desired = [
        SubscriptionSpec(URL, WatchTable="Patient", PollingSeconds=30, Note="slower"),
        SubscriptionSpec(URL, WatchTable="Appointment", PollingSeconds=5, Workstation="APISERVICE"),
        SubscriptionSpec("http://localhost:2097/", UiEventType="PatientSelected"),
    ]
    result = await ensure_subscriptions(od, desired)
    assert [s.SubscriptionNum for s in result.updated] == [keep.SubscriptionNum]
    assert [s.SubscriptionNum for s in result.deleted] == [stale.SubscriptionNum]
    assert sorted(s.WatchTable or s.UiEventType for s in result.created) == ["Appointment", "PatientSelected"]
    now = {s.WatchTable or s.UiEventType: s for s in await od.subscriptions.list().collect()}
    assert set(now) == {"Patient", "Appointment", "PatientSelected"}
    assert now["Patient"].PollingSeconds == 30 and now["Patient"].Note == "slower"
    assert now["Patient"].DateTimeStart == keep.DateTimeStart  # updated in place: no change lost or resent
    again = await ensure_subscriptions(od, desired)
    assert len(again.unchanged) == 3 and not (again.created or again.updated or again.deleted)


async def test_ensure_is_a_method_of_the_subscriptions_resource(od) -> None:
    await od.subscriptions.create(EndPointUrl=URL, Workstation="", WatchTable="Schedule", PollingSeconds=5)
    result = await od.subscriptions.ensure(
        [SubscriptionSpec(URL, WatchTable="Appointment", PollingSeconds=5)]
    )
    assert [s.WatchTable for s in result.created] == ["Appointment"]
    assert [s.WatchTable for s in result.deleted] == ["Schedule"]
    assert [s.WatchTable for s in await od.subscriptions.list().collect()] == ["Appointment"]
    kept = await od.subscriptions.ensure([], prune=False)  # nothing wanted, nothing removed
    assert not kept.deleted and len(await od.subscriptions.list().collect()) == 1


def test_subscription_specs_are_checked_before_any_request() -> None:
    with pytest.raises(ValueError):
        SubscriptionSpec("ftp://x/", WatchTable="Patient", PollingSeconds=5)
    with pytest.raises(ValueError):
        SubscriptionSpec(URL, WatchTable="Patient")
    with pytest.raises(ValueError):
        SubscriptionSpec(URL, WatchTable="Patient", PollingSeconds=5, UiEventType="PatientSelected")
    with pytest.raises(ValueError):
        SubscriptionSpec(URL, UiEventType="PatientSelected", PollingSeconds=5)


async def test_operatory_changes_and_deleted_appointments_fire(emu, od) -> None:
    """Tables without a change stamp, and deletions, are found by comparing with what was delivered."""
    receiver = EventReceiver([KEY])
    ops: list[Event[Operatory]] = []
    gone: list[Event[Appointment]] = []
    receiver.on("Operatory")(_into(ops))
    receiver.on("AppointmentDeleted")(_into(gone))
    async with serve(receiver.asgi()) as port:
        url = f"http://127.0.0.1:{port}/"
        op_sub = await od.subscriptions.create(
            EndPointUrl=url, Workstation="", WatchTable="Operatory", PollingSeconds=3600
        )
        del_sub = await od.subscriptions.create(
            EndPointUrl=url, Workstation="", WatchTable="AppointmentDeleted", PollingSeconds=3600
        )
        assert await emu.events.poll_now(op_sub.SubscriptionNum) == []  # nothing changed yet: nothing sent
        emu.db.execute("UPDATE operatories SET OpName = 'Surgery 2' WHERE OperatoryNum = 2")
        apt = emu.db.execute("SELECT AptNum FROM appointments ORDER BY AptNum LIMIT 1").fetchone()[0]
        emu.db.execute("DELETE FROM appointments WHERE AptNum = ?", (apt,))  # deleted in Open Dental itself
        assert [d.rows for d in await emu.events.poll_now(op_sub.SubscriptionNum)] == [1]
        assert [d.rows for d in await emu.events.poll_now(del_sub.SubscriptionNum)] == [1]
        assert await emu.events.poll_now() == []  # delivered: not sent again
        await join(receiver)
    assert [(e.row.OperatoryNum, e.row.OpName) for e in ops] == [(2, "Surgery 2")]
    assert [e.row.AptNum for e in gone] == [apt]


async def test_patients_and_patfields_changed_through_the_sdk(emu, od) -> None:
    from odapi_async.resources import PatField, Patient

    receiver = EventReceiver([KEY])
    patients: list[Event[Patient]] = []
    fields: list[Event[PatField]] = []
    receiver.on("Patient")(_into(patients))
    receiver.on("PatField")(_into(fields))
    async with serve(receiver.asgi()) as port:
        url = f"http://127.0.0.1:{port}/"
        subs = [
            await od.subscriptions.create(EndPointUrl=url, Workstation="", WatchTable=t, PollingSeconds=3600)
            for t in ("Patient", "PatField")
        ]
        pat = (await od.patients.list(Limit=1).first_page())[0]
        await od.patients.update(pat.PatNum, City="Lakewood")
        field = await od.patfields.create(PatNum=pat.PatNum, FieldName="Referral", FieldValue="Dr. Chu")
        for sub in subs:
            assert [d.status for d in await emu.events.poll_now(sub.SubscriptionNum)] == [200]
        await join(receiver)
    assert [(e.row.PatNum, e.row.City) for e in patients] == [(pat.PatNum, "Lakewood")]
    assert isinstance(patients[0].row, Patient) and patients[0].row.DateTStamp is not None
    assert [(e.row.PatFieldNum, e.row.FieldValue) for e in fields] == [(field.PatFieldNum, "Dr. Chu")]
    assert isinstance(fields[0].row, PatField)


async def test_expired_and_unserved_subscriptions_do_not_fire(emu, od) -> None:
    emu.events.configure(workstations=("FRONTDESK",))
    past = dt.datetime.now().replace(microsecond=0) - dt.timedelta(hours=1)
    expired = await od.subscriptions.create(
        EndPointUrl=URL, Workstation="", WatchTable="Appointment", PollingSeconds=1, DateTimeStop=past
    )
    unserved = await od.subscriptions.create(
        EndPointUrl=URL, Workstation="CLOSED-FOR-THE-WEEKEND", WatchTable="Patient", PollingSeconds=1
    )
    emu.db.execute(
        "UPDATE appointments SET Note = 'x', DateTStamp = ? WHERE AptNum = 1", (emu.core.practice.now_text(),)
    )
    assert await emu.events.poll_now(expired.SubscriptionNum) == []
    assert await emu.events.poll_now(unserved.SubscriptionNum) == []
    [after] = [
        s for s in await od.subscriptions.list().collect() if s.SubscriptionNum == unserved.SubscriptionNum
    ]
    assert after.DateTimeStart == unserved.DateTimeStart  # no workstation polled it


async def test_webhooks_go_to_loopback_only(emu, od) -> None:
    sub = await od.subscriptions.create(
        EndPointUrl="https://myserver.example/apievents/",
        Workstation="",
        WatchTable="Appointment",
        PollingSeconds=1,
    )
    emu.db.execute(
        "UPDATE appointments SET Note = 'y', DateTStamp = ? WHERE AptNum = 1", (emu.core.practice.now_text(),)
    )
    [refused] = await emu.events.poll_now(sub.SubscriptionNum)
    assert refused.status is None and "loopback" in refused.error


async def test_mounted_in_a_starlette_app_with_the_hosts_lifespan(emu, od) -> None:
    from contextlib import asynccontextmanager

    receiver = EventReceiver([KEY])
    seen: list[Event[Appointment]] = []
    receiver.on("Appointment")(_into(seen))

    @asynccontextmanager
    async def lifespan(app):
        async with receiver:  # a mounted app's own lifespan is not run by Starlette
            yield

    async def health(request):
        return PlainTextResponse("ok")

    app = Starlette(
        routes=[Route("/health", health), Mount("/od-events", app=receiver.asgi(lifespan=False))],
        lifespan=lifespan,
    )
    async with serve(app) as port:
        sub = await od.subscriptions.create(
            EndPointUrl=f"http://127.0.0.1:{port}/od-events/appointments", Workstation="", WatchTable="Appointment",
            PollingSeconds=3600,
        )  # fmt: skip
        emu.db.execute(
            "UPDATE appointments SET Note = 'z', DateTStamp = ? WHERE AptNum = 2",
            (emu.core.practice.now_text(),),
        )
        assert [d.status for d in await emu.events.poll_now(sub.SubscriptionNum)] == [200]
        await join(receiver)
    assert [e.row.AptNum for e in seen] == [2]


def _into(out: list):
    async def handler(event: Event) -> None:
        out.append(event)

    return handler
