"""End to end over real sockets: the emulator fires webhooks → uvicorn serving the receiver's ASGI app →
handlers get decoded models, each change once, however often it is delivered."""

from __future__ import annotations

import datetime as dt
from collections import Counter

import anyio
import httpx2
import pytest
from conftest import DEV, KEY, OTHER_KEY, serve

from odapi_async.events import Event, EventReceiver, SQLiteEventStore, SubscriptionSpec, ensure_subscriptions
from odapi_async.resources import Appointment

pytestmark = [pytest.mark.integration]


class Collector:
    """Records handled events; lets a test wait (bounded) until a condition holds."""

    def __init__(self) -> None:
        self.events: list[Event[Appointment]] = []
        self._changed = anyio.Event()

    async def __call__(self, event: Event[Appointment]) -> None:
        self.events.append(event)
        self._changed.set()
        self._changed = anyio.Event()

    async def wait_for(self, predicate, limit: float = 20.0) -> None:
        with anyio.fail_after(limit):
            while not predicate(self.events):
                await self._changed.wait()

    def versions(self) -> Counter[tuple[int, dt.datetime | None]]:
        return Counter((e.row.AptNum, e.row.DateTStamp) for e in self.events)


class Answered:
    """ASGI wrapper counting the calls answered, so a test can wait for the n-th one."""

    def __init__(self, app) -> None:
        self.app = app
        self.count = 0
        self._changed = anyio.Event()

    async def __call__(self, scope, receive, send) -> None:
        await self.app(scope, receive, send)
        if scope["type"] == "http":
            self.count += 1
            self._changed.set()
            self._changed = anyio.Event()

    async def wait_for(self, n: int, limit: float = 10.0) -> None:
        with anyio.fail_after(limit):
            while self.count < n:
                await self._changed.wait()


async def join(receiver: EventReceiver) -> None:
    with anyio.fail_after(20):
        await receiver.join()


def endpoint(port: int) -> str:
    return f"http://127.0.0.1:{port}/od/events?type=appointment"


async def new_appointments(od, count: int) -> list[Appointment]:
    pat = (await od.patients.list(Limit=1).first_page())[0]
    ops = await od.operatories.list().collect()
    start = dt.datetime.now().replace(minute=0, second=0, microsecond=0) + dt.timedelta(days=30)
    return [
        await od.appointments.create(
            PatNum=pat.PatNum, AptDateTime=start + dt.timedelta(hours=i), Op=ops[0].OperatoryNum
        )
        for i in range(count)
    ]


async def test_changes_through_the_sdk_arrive_as_models_once_despite_two_workstations(emu, od) -> None:
    emu.events.configure(workstations=("FRONTDESK", "HYGIENE2"))  # a blank Workstation fires from both
    receiver = EventReceiver(customer_keys={"main-street": KEY})
    seen = Collector()
    receiver.on("Appointment")(seen)
    async with serve(receiver.asgi()) as port:
        result = await ensure_subscriptions(
            od, [SubscriptionSpec(endpoint(port), WatchTable="Appointment", PollingSeconds=1)]
        )
        assert len(result.created) == 1 and result.created[0].CustomerKey == KEY
        created = await new_appointments(od, 3)
        await od.appointments.update(created[0].AptNum, Note="moved to the morning")
        changed = await od.appointments.get(created[0].AptNum)
        wanted = {(a.AptNum, a.DateTStamp) for a in (*created[1:], changed)}
        # the emulator's own timer (every PollingSeconds) delivers them
        await seen.wait_for(lambda evs: wanted <= {(e.row.AptNum, e.row.DateTStamp) for e in evs})
        for _ in range(2):  # more polls: same-second rows come again, from both workstations
            await emu.events.poll_now()
        await join(receiver)
        deliveries = [d for d in emu.events.deliveries if d.rows]  # while the receiver is up
    assert {d.workstation for d in deliveries} == {"FRONTDESK", "HYGIENE2"}
    assert all(d.status == 200 for d in deliveries)
    assert receiver.stats["duplicates"] > 0
    counts = seen.versions()
    # Each version of each row handled exactly once. A version is the row's content: a poll that lands between
    # the create and the update of one second delivers both, with the same DateTStamp (the Note tells them apart).
    contents = Counter((e.row.AptNum, e.row.DateTStamp, e.row.Note) for e in seen.events)
    assert all(n == 1 for n in contents.values()), contents
    assert wanted <= set(counts)
    event = next(e for e in seen.events if e.row.AptNum == changed.AptNum and e.row.Note)
    assert isinstance(event.row, Appointment)
    assert event.row.Note == "moved to the morning" and event.row.AptStatus == "Scheduled"
    assert event.office == "main-street" and event.workstation in ("FRONTDESK", "HYGIENE2")
    assert event.type == "Appointment" and event.kind == "WatchTable"


async def test_wrong_key_bad_json_and_oversized_bodies_are_refused(emu, od) -> None:
    receiver = EventReceiver([KEY], max_body_bytes=10_000)
    receiver.on("Appointment")(Collector())
    good = {"Authorization": KEY, "Event-Type": "WatchTable: Appointment", "Workstation": "FRONTDESK"}
    async with serve(receiver.asgi()) as port, httpx2.AsyncClient(timeout=10) as client:
        url = endpoint(port)
        wrong = await client.post(url, headers={**good, "Authorization": "not-the-key"}, content=b"[]")
        assert wrong.status_code == 401 and "not-the-key" not in wrong.text
        bad = await client.post(url, headers=good, content=b'[{"AptNum": 1,')
        assert bad.status_code == 400 and "JSON" in bad.text
        wrong_shape = await client.post(url, headers=good, content=b'[{"AptNum": "eighteen"}]')
        assert wrong_shape.status_code == 400
        big = await client.post(url, headers=good, content=b"[" + b" " * 20_000 + b"]")
        assert big.status_code == 400 and "larger" in big.text
        no_type = await client.post(url, headers={"Authorization": KEY}, content=b"[]")
        assert no_type.status_code == 400 and "Event-Type" in no_type.text
        get = await client.get(url)
        assert get.status_code == 405
        # the office of another customer key: every delivery is refused and DateTimeStart stays put
        async with _session(emu, OTHER_KEY) as other:
            sub = await other.subscriptions.create(
                EndPointUrl=url, Workstation="", WatchTable="Appointment", PollingSeconds=3600
            )
            await new_appointments(other, 1)
            sent = await emu.events.poll_now(sub.SubscriptionNum)
            assert [d.status for d in sent] == [401]
            [after] = [s for s in await other.subscriptions.list().collect()]
            assert after.DateTimeStart == sub.DateTimeStart
    assert receiver.stats["new"] == 0 and receiver.stats["unauthorized"] == 2


async def test_2500_changed_rows_arrive_in_three_batches(emu, od) -> None:
    receiver = EventReceiver([KEY])
    seen = Collector()
    receiver.on("Appointment")(seen)
    async with serve(receiver.asgi()) as port:
        sub = await od.subscriptions.create(
            EndPointUrl=endpoint(port), Workstation="", WatchTable="Appointment", PollingSeconds=3600
        )
        # the office changes 2 500 rows at once (a bulk reschedule): written straight to its database
        stamp = emu.core.practice.now_text()
        emu.db.execute(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?) "
            "INSERT INTO appointments (PatNum, AptStatus, Op, AptDateTime, DateTStamp, Note) "
            "SELECT 1, 'Scheduled', 1, '2030-01-01 08:00:00', ?, 'bulk ' || i FROM n",
            (2500, stamp),
        )
        sent = await emu.events.poll_now(sub.SubscriptionNum)
        await join(receiver)
    assert [d.rows for d in sent] == [1000, 1000, 500]
    assert all(d.status == 200 for d in sent)
    bulk = [e for e in seen.events if e.row.Note.startswith("bulk ")]
    assert len(bulk) == 2500 and len({e.row.AptNum for e in bulk}) == 2500


async def test_a_slow_handler_does_not_delay_the_answer(emu, od) -> None:
    release = anyio.Event()
    started = anyio.Event()
    receiver = EventReceiver([KEY])

    @receiver.on("Appointment")
    async def slow(event: Event[Appointment]) -> None:
        started.set()
        await release.wait()  # held until the emulator has its answer

    async with serve(receiver.asgi()) as port:
        sub = await od.subscriptions.create(
            EndPointUrl=endpoint(port), Workstation="", WatchTable="Appointment", PollingSeconds=3600
        )
        await new_appointments(od, 2)
        sent = await emu.events.poll_now(sub.SubscriptionNum)
        # the 200 arrived while the handler was still blocked: the answer did not wait for it
        assert [d.status for d in sent] == [200]
        with anyio.fail_after(10):
            await started.wait()
        assert receiver.stats["handled"] == 0
        release.set()
        await join(receiver)
    assert receiver.stats["handled"] == 2


async def test_receiver_down_then_restarted_loses_and_doubles_nothing(emu, od, tmp_path) -> None:
    path = tmp_path / "events.db"
    emu.events.configure(workstations=("APISERVICE",))

    # 1. first run: two changes are accepted (200) but their handler never finishes before shutdown
    stuck = anyio.Event()
    first = EventReceiver([KEY], store=SQLiteEventStore(path), drain_timeout=0.2)

    @first.on("Appointment")
    async def never_finishes(event: Event[Appointment]) -> None:
        await stuck.wait()

    async with serve(first.asgi()) as port:
        sub = await od.subscriptions.create(
            EndPointUrl=endpoint(port),
            Workstation="APISERVICE",
            WatchTable="Appointment",
            PollingSeconds=3600,
        )
        batch_one = await new_appointments(od, 2)
        sent = await emu.events.poll_now(sub.SubscriptionNum)
        assert [d.status for d in sent] == [200]
        first_body = [e for e in emu.events.deliveries if e.status == 200][-1]
    assert first.stats["handled"] == 0 and first.stats["new"] == 2

    # 2. the receiver is down: the office's delivery fails and DateTimeStart stays where it was
    before = (await od.subscriptions.list().collect())[0].DateTimeStart
    batch_two = await new_appointments(od, 3)
    failed = await emu.events.poll_now(sub.SubscriptionNum)
    assert [d.status for d in failed] == [None] and failed[0].error
    assert (await od.subscriptions.list().collect())[0].DateTimeStart == before

    # 3. restarted on the same port and file: the queued events run, the resend is handled once
    seen = Collector()
    second = EventReceiver([KEY], store=SQLiteEventStore(path))
    second.on("Appointment")(seen)
    async with serve(second.asgi(), port=port):
        resent = await emu.events.poll_now(sub.SubscriptionNum)
        assert [d.status for d in resent] == [200] and resent[0].rows >= 3
        await emu.events.poll_now(sub.SubscriptionNum)  # and once more: same-second rows come again
        await join(second)
    assert first_body.rows == 2
    counts = seen.versions()
    wanted = {(a.AptNum, a.DateTStamp) for a in (*batch_one, *batch_two)}
    assert set(counts) == wanted  # nothing lost: the two accepted before the restart are there
    assert all(n == 1 for n in counts.values()), counts  # nothing doubled
    assert second.stats["duplicates"] > 0


async def test_redelivery_fault_is_dropped_as_duplicate(emu, od) -> None:
    emu.events.configure(redeliver_after=0.05)
    receiver = EventReceiver([KEY])
    seen = Collector()
    receiver.on("Appointment")(seen)
    app = Answered(receiver.asgi())
    async with serve(app) as port:
        sub = await od.subscriptions.create(
            EndPointUrl=endpoint(port), Workstation="", WatchTable="Appointment", PollingSeconds=3600
        )
        await new_appointments(od, 2)
        await emu.events.poll_now(sub.SubscriptionNum)
        await app.wait_for(2)  # the delivery, then the same batch again a moment later
        await join(receiver)
    assert [d.redelivery for d in emu.events.deliveries if d.rows] == [False, True]
    assert receiver.stats["duplicates"] >= 2
    assert all(n == 1 for n in seen.versions().values())


async def test_patient_selected_ui_event(emu, od) -> None:
    receiver = EventReceiver([KEY])
    selected: list[Event] = []
    done = anyio.Event()

    @receiver.on_ui("PatientSelected")
    async def on_selected(event: Event) -> None:
        selected.append(event)
        done.set()

    async with serve(receiver.asgi()) as port, httpx2.AsyncClient(timeout=10) as client:
        await od.subscriptions.create(
            EndPointUrl=f"http://localhost:{port}/", Workstation="", UiEventType="PatientSelected"
        )
        pat = (await od.patients.list(Limit=1).first_page())[0]
        admin = emu.endpoints["local"].rsplit("/api/v1", 1)[0] + "/_emulator/events/ui"
        fired = await client.post(admin, json={"UiEventType": "PatientSelected", "PatNum": pat.PatNum})
        assert fired.status_code == 200 and [d["status"] for d in fired.json()] == [200]
        again = await client.post(admin, json={"UiEventType": "PatientSelected", "PatNum": pat.PatNum})
        assert again.json() == []  # selecting the same patient again fires nothing
        with anyio.fail_after(10):
            await done.wait()
        await join(receiver)
    [event] = selected
    assert event.kind == "UiEventType" and event.type == "PatientSelected"
    assert event.row.PatNum == pat.PatNum and event.row.LName == pat.LName


def _session(emu, key):
    from odapi_async import Hub, OpenDental

    return OpenDental(DEV, key, endpoints=emu.endpoints, modes=("local",), hub=Hub())
