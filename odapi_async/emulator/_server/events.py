"""API Events from the emulator: subscriptions that make it POST webhooks, as an office's workstations do.

Database events follow the docs (apievents.md, apiguideevents.md): every ``PollingSeconds`` each workstation
that serves a subscription queries the watched table for rows whose ``DateTStamp`` (or ``SecDateTEdit``) is at
or after the subscription's ``DateTimeStart`` (at most three days back), POSTs them in batches of up to 1000,
and moves ``DateTimeStart`` to the poll's time only after a 2xx. A failed delivery leaves it, so the rows
come again with the next poll: at-least-once. Tables without a change stamp (Operatory) and deletions
(AppointmentDeleted) are found by comparing with the rows last delivered. UI events fire at once, through
:meth:`EventFirer.fire_ui` or ``POST /_emulator/events/ui``.

Fault modes: ``workstations`` (a subscription with a blank Workstation fires from every one: duplicates) and
``redeliver_after`` (each successful delivery is sent once more after that many seconds). Webhooks go to
loopback addresses only.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx2
import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from odapi_async.emulator._api.handlers import Call, Reply
from odapi_async.emulator._catalog.routes import Resource
from odapi_async.emulator._practice.db import ApiError, Practice, quote_ident
from odapi_async.emulator._server.http import is_loopback, json_answer, plain

logger = logging.getLogger("odapi_async.emulator")

#: WatchTable -> the resource (url segment) whose table is watched.
WATCH_TABLES: dict[str, str] = {
    "Appointment": "appointments",
    "AppointmentDeleted": "appointments",
    "Operatory": "operatories",
    "PatField": "patfields",
    "Patient": "patients",
    "Provider": "providers",
    "Schedule": "schedules",
    "ToothInitial": "toothinitials",
}
#: UiEventType -> the fields its object carries (apievents.md, "UI Event").
UI_EVENTS: dict[str, list[str]] = {
    "PatientSelected": [
        "PatNum",
        "LName",
        "FName",
        "MiddleI",
        "Preferred",
        "PatStatus",
        "Gender",
        "Position",
        "Birthdate",
        "SSN",
        "Address",
        "Address2",
        "City",
        "State",
        "Zip",
        "HmPhone",
        "WkPhone",
        "WirelessPhone",
        "Guarantor",
        "Email",
        "EstBalance",
        "PriProv",
        "priProvAbbr",
        "SecProv",
        "secProvAbbr",
        "BillingType",
        "ImageFolder",
        "ChartNumber",
        "MedicaidID",
        "BalTotal",
        "DateFirstVisit",
        "ClinicNum",
        "clinicAbbr",
        "PreferConfirmMethod",
        "PreferContactMethod",
        "PreferRecallMethod",
        "Language",
        "siteDesc",
        "DateTStamp",
        "TxtMsgOk",
        "SecDateEntry",
    ],
}
RESEND_HORIZON = timedelta(days=3)
BATCH_SIZE = 1000
#: The workstation that fires when none are configured and a subscription names none.
DEFAULT_WORKSTATION = "EMULATOR"
ZERO_DATETIME = "0001-01-01 00:00:00"
_TIME = "%Y-%m-%d %H:%M:%S"


@dataclass
class Delivery:
    """One webhook POST (or one refused before sending), for tests and ``GET /_emulator/events``."""

    subscription: int
    workstation: str
    event_type: str
    rows: int
    status: int | None  # the endpoint's answer; None when it could not be reached
    error: str
    started: float  # time.monotonic()
    elapsed: float
    redelivery: bool = False

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


class EventFirer:
    """Serves ``/subscriptions`` and fires their events (see the module docstring)."""

    def __init__(self, practice: Practice, *, history: int = 1000) -> None:
        self.practice = practice
        self.res: Resource = practice.cat.resources["subscriptions"]
        self.workstations: tuple[str, ...] | None = None
        self.poll_unit: float = 1.0  # seconds per PollingSecond (tests shrink it)
        self.timeout: float = 10.0
        self.redeliver_after: float | None = None
        self.batch_size: int = BATCH_SIZE
        self.deliveries: deque[Delivery] = deque(maxlen=history)
        self._locks: dict[int, asyncio.Lock] = {}
        self._due: dict[int, float] = {}
        self._snapshots: dict[int, dict[int, str]] = {}
        self._last_selected: dict[tuple[str, str], int] = {}
        self._client: httpx2.AsyncClient | None = None
        self._task: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    def configure(self, **settings: Any) -> None:
        """Change how events fire: ``workstations`` (names, or None), ``poll_unit`` (seconds per
        PollingSecond), ``timeout``, ``redeliver_after`` (seconds, or None), ``batch_size``."""
        unknown = set(settings) - {"workstations", "poll_unit", "timeout", "redeliver_after", "batch_size"}
        if unknown:
            raise ValueError(f"unknown event setting(s): {', '.join(sorted(unknown))}")
        for name in ("poll_unit", "timeout", "batch_size"):
            if name in settings and not settings[name] > 0:
                raise ValueError(f"{name} must be positive")
        if "workstations" in settings:
            given = settings["workstations"]
            self.workstations = tuple(str(w) for w in given) if given is not None else None
        if "redeliver_after" in settings:
            given = settings["redeliver_after"]
            self.redeliver_after = float(given) if given is not None else None
        self.poll_unit = float(settings.get("poll_unit", self.poll_unit))
        self.timeout = float(settings.get("timeout", self.timeout))
        self.batch_size = int(settings.get("batch_size", self.batch_size))

    # -- lifecycle ------------------------------------------------------------------------------------------
    async def start(self) -> None:
        self._client = httpx2.AsyncClient(timeout=self.timeout, trust_env=False)
        self._task = asyncio.get_running_loop().create_task(self._run(), name="odapi-emulator-events")

    async def aclose(self) -> None:
        tasks = [t for t in (self._task, *self._tasks) if t is not None]
        self._task = None
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self) -> None:
        """Poll every subscription when it is due; each poll runs in its own task (a slow endpoint delays
        only its own subscription)."""
        while True:
            try:
                self._tick()
            except Exception:  # a broken row or a closed database must not stop every later poll
                logger.exception("emulator: polling subscriptions failed")
            await asyncio.sleep(min(0.05, self.poll_unit / 4))

    def _tick(self) -> None:
        now = time.monotonic()
        for sub in self._subscriptions("WatchTable != ''"):
            num = int(sub["SubscriptionNum"])
            period = max(int(sub["PollingSeconds"] or 0), 1) * self.poll_unit
            due = self._due.setdefault(num, now + period)
            if now >= due and not self._lock(num).locked():
                self._due[num] = now + period
                self._spawn(self._poll_logged(num))

    async def _poll_logged(self, num: int) -> None:
        try:
            await self._poll(num)
        except Exception:
            logger.exception("emulator: polling subscription %d failed", num)

    # -- the /subscriptions API -----------------------------------------------------------------------------
    def subscriptions(self, call: Call, customer_key: str) -> Reply:
        """Subscriptions POST/GET/PUT/DELETE, each for the calling customer key only."""
        op = call.op.id
        if op == "create":
            return self._create(call, customer_key)
        if op == "list":
            body = self.practice.list_json(
                self.res,
                ['"CustomerKey" = ?'],
                [customer_key],
                limit=call.limit,
                offset=call.offset,
                with_sdt=False,
            )
            return Reply(200, body)
        row = self.practice.row(self.res, call.key) if call.key is not None else None
        if row is None or row["CustomerKey"] != customer_key:
            raise ApiError(404, "Subscription not found.")
        if op == "update":
            if "PollingSeconds" in call.body and not row["WatchTable"]:
                raise ApiError(400, "PollingSeconds can only be set for WatchTable subscriptions.")
            if "PollingSeconds" in call.body and int(call.body["PollingSeconds"]) < 1:
                raise ApiError(400, "PollingSeconds must be at least 1.")
            self.practice.update(self.res, int(row["SubscriptionNum"]), call.body)
            self._due.pop(int(row["SubscriptionNum"]), None)
            return Reply(200, b"", None)
        self.practice.delete(self.res, int(row["SubscriptionNum"]))
        self._snapshots.pop(int(row["SubscriptionNum"]), None)
        return Reply(200, b"", None)

    def _create(self, call: Call, customer_key: str) -> Reply:
        values = dict(call.body)
        table, ui = str(values.get("WatchTable") or ""), str(values.get("UiEventType") or "")
        if not str(values.get("EndPointUrl") or "").strip():
            raise ApiError(400, "EndPointUrl is required.")
        if bool(table) == bool(ui):
            raise ApiError(400, "A subscription needs either a WatchTable or a UiEventType.")
        if table and table not in WATCH_TABLES:
            raise ApiError(400, f"WatchTable is invalid: '{table}' is not one of {', '.join(WATCH_TABLES)}.")
        if ui and ui not in UI_EVENTS:
            raise ApiError(400, f"UiEventType is invalid: '{ui}' is not one of {', '.join(UI_EVENTS)}.")
        if table and int(values.get("PollingSeconds") or 0) < 1:
            raise ApiError(400, "PollingSeconds is required for WatchTable subscriptions.")
        if ui:
            values["PollingSeconds"] = 0
        values["CustomerKey"] = customer_key
        if values.get("DateTimeStart") in (None, "", ZERO_DATETIME):
            values["DateTimeStart"] = self.practice.now_text()
        num = self.practice.insert(self.res, values)
        if table and self._needs_snapshot(table):
            self._snapshots[num] = self._current(table)
        return Reply(201, self.practice.one_json(self.res, num, with_sdt=False) or b"{}")

    # -- database events ------------------------------------------------------------------------------------
    def _subscriptions(self, where: str, args: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        now = self.practice.now_text()
        expiry = f'("DateTimeStop" = \'{ZERO_DATETIME}\' OR "DateTimeStop" > ?)'
        return self.practice.rows(self.res, f"{where} AND {expiry}", [*args, now])

    def _lock(self, num: int) -> asyncio.Lock:
        return self._locks.setdefault(num, asyncio.Lock())

    def _firing(self, sub: dict[str, Any]) -> list[str]:
        """The workstations that serve this subscription (a named one must be running)."""
        named = str(sub["Workstation"] or "")
        if named:
            return [named] if self.workstations is None or named in self.workstations else []
        return list(self.workstations) if self.workstations else [DEFAULT_WORKSTATION]

    def _needs_snapshot(self, table: str) -> bool:
        """Deletions, and tables without a change stamp (Operatory), are found by comparing rows."""
        res = self.practice.cat.resources[WATCH_TABLES[table]]
        return table == "AppointmentDeleted" or res.stamp_column is None

    def _current(self, table: str) -> dict[int, str]:
        res = self.practice.cat.resources[WATCH_TABLES[table]]
        expr = self.practice.json_expr(res, None, False)
        sql = f"SELECT {self.practice.order_by(res)}, {expr} FROM {quote_ident(res.segment)}"
        return {int(pk): row for pk, row in self.practice.db.execute(sql)}

    def _changed_rows(self, num: int, table: str, since: str) -> tuple[list[str], dict[int, str] | None]:
        """The rows to send and, for compared tables, the snapshot to keep once they are delivered."""
        if self._needs_snapshot(table):
            before = self._snapshots.get(num)
            current = self._current(table)
            if before is None:  # first sight (e.g. after an emulator restart): nothing known to compare
                return [], current
            if table == "AppointmentDeleted":
                return [row for pk, row in before.items() if pk not in current], current
            return [row for pk, row in current.items() if before.get(pk) != row], current
        res = self.practice.cat.resources[WATCH_TABLES[table]]
        stamp = self.practice.col(res, res.stamp_column or "DateTStamp")
        expr = self.practice.json_expr(res, None, False)
        sql = (
            f"SELECT {expr} FROM {quote_ident(res.segment)} WHERE {stamp} >= ? "
            f"ORDER BY {stamp}, {self.practice.order_by(res)}"
        )
        return [r[0] for r in self.practice.db.execute(sql, (since,))], None

    async def poll_now(self, subscription: int | None = None) -> list[Delivery]:
        """Poll every database subscription (or one) now, as if it were due; return its deliveries."""
        where, args = "WatchTable != ''", ()
        if subscription is not None:
            where, args = "WatchTable != '' AND \"SubscriptionNum\" = ?", (subscription,)  # type: ignore[assignment]
        out: list[Delivery] = []
        for sub in self._subscriptions(where, args):
            out += await self._poll(int(sub["SubscriptionNum"]))
        return out

    async def _poll(self, num: int) -> list[Delivery]:
        async with self._lock(num):
            found = self._subscriptions('"SubscriptionNum" = ?', (num,))
            if not found:
                return []
            sub = found[0]
            firing = self._firing(sub)
            if not firing:
                return []  # no workstation running for it: nothing polls, DateTimeStart stays
            polled = self.practice.clock().replace(microsecond=0)
            start = datetime.strptime(str(sub["DateTimeStart"]), _TIME)
            since = max(start, polled - RESEND_HORIZON).strftime(_TIME)
            table = str(sub["WatchTable"])
            rows, snapshot = self._changed_rows(num, table, since)
            deliveries: list[Delivery] = []
            delivered = not rows
            for workstation in firing if rows else ():
                sent = await self._send_batches(sub, workstation, f"WatchTable: {table}", rows)
                deliveries += sent
                delivered = delivered or all(d.ok for d in sent)
            if delivered:
                self.practice.db.execute(
                    f'UPDATE {quote_ident(self.res.segment)} SET "DateTimeStart" = ? WHERE "SubscriptionNum" = ?',
                    (polled.strftime(_TIME), num),
                )
                if snapshot is not None:
                    self._snapshots[num] = snapshot
            return deliveries

    async def _send_batches(
        self, sub: dict[str, Any], workstation: str, event_type: str, rows: list[str]
    ) -> list[Delivery]:
        out = []
        for i in range(0, len(rows), self.batch_size):
            chunk = rows[i : i + self.batch_size]
            body = ("[" + ",".join(chunk) + "]").encode()
            delivery = await self._post(sub, workstation, event_type, body, len(chunk))
            out.append(delivery)
            if not delivery.ok:
                break  # the rest comes with the next poll, as DateTimeStart stays
            if self.redeliver_after is not None:
                self._spawn(
                    self._redeliver(sub, workstation, event_type, body, len(chunk), self.redeliver_after)
                )
        return out

    async def _redeliver(
        self, sub: dict[str, Any], workstation: str, event_type: str, body: bytes, rows: int, delay: float
    ) -> None:
        await asyncio.sleep(delay)
        await self._post(sub, workstation, event_type, body, rows, redelivery=True)

    async def _post(
        self,
        sub: dict[str, Any],
        workstation: str,
        event_type: str,
        body: bytes,
        rows: int,
        *,
        redelivery: bool = False,
    ) -> Delivery:
        url = str(sub["EndPointUrl"])
        started = time.monotonic()
        status: int | None = None
        error = ""
        if not is_loopback(urlsplit(url).hostname or ""):
            error = "the emulator sends events to loopback addresses only"
        elif self._client is None:
            error = "the emulator is not running"
        else:
            headers = {
                "Authorization": str(sub["CustomerKey"]),
                "Workstation": workstation,
                "Event-Type": event_type,
                "Content-Type": "application/json",
            }
            try:
                response = await self._client.post(url, content=body, headers=headers, timeout=self.timeout)
                status = response.status_code
            except (httpx2.HTTPError, OSError) as exc:
                error = type(exc).__name__
        delivery = Delivery(
            int(sub["SubscriptionNum"]), workstation, event_type, rows, status, error, started,
            time.monotonic() - started, redelivery,
        )  # fmt: skip
        self.deliveries.append(delivery)
        return delivery

    # -- UI events ------------------------------------------------------------------------------------------
    async def fire_ui(
        self, event_type: str, *, PatNum: int, workstation: str = DEFAULT_WORKSTATION
    ) -> list[Delivery]:
        """A user on ``workstation`` selected a patient: POST to every matching UI subscription at once.

        Selecting the patient already selected on that workstation fires nothing (apiguideevents.md)."""
        fields = UI_EVENTS.get(event_type)
        if fields is None:
            raise ValueError(f"unknown UiEventType {event_type!r}")
        patients = self.practice.cat.resources["patients"]
        expr = self.practice.json_expr(patients, fields, False)
        found = self.practice.db.execute(
            f"SELECT {expr} FROM {quote_ident(patients.segment)} WHERE {self.practice.order_by(patients)} = ?",
            (PatNum,),
        ).fetchone()
        if found is None:
            raise ValueError(f"no patient with PatNum {PatNum}")
        if self._last_selected.get((workstation, event_type)) == PatNum:
            return []
        self._last_selected[(workstation, event_type)] = PatNum
        out = []
        for sub in self._subscriptions('"UiEventType" = ?', (event_type,)):
            if sub["Workstation"] in ("", workstation):
                out.append(
                    await self._post(sub, workstation, f"UiEventType: {event_type}", found[0].encode(), 1)
                )
        return out

    # -- admin routes ---------------------------------------------------------------------------------------
    def routes(self) -> list[Route]:
        """``GET/PUT /_emulator/events`` (deliveries, settings), ``POST /_emulator/events/poll`` and ``/ui``."""

        async def events_route(request: Request) -> Response:
            if request.method == "PUT":
                try:
                    settings = msgspec.json.decode(await request.body())
                    self.configure(**settings)
                except (msgspec.DecodeError, TypeError, ValueError) as exc:
                    return plain(400, f"Bad event settings: {exc}")
            return json_answer(
                {
                    "workstations": self.workstations,
                    "poll_unit": self.poll_unit,
                    "redeliver_after": self.redeliver_after,
                    "batch_size": self.batch_size,
                    "deliveries": [asdict(d) for d in self.deliveries],
                }
            )

        async def poll_route(request: Request) -> Response:
            return json_answer([asdict(d) for d in await self.poll_now()])

        async def ui_route(request: Request) -> Response:
            try:
                body = msgspec.json.decode(await request.body())
                sent = await self.fire_ui(
                    str(body.get("UiEventType", "PatientSelected")),
                    PatNum=int(body["PatNum"]),
                    workstation=str(body.get("Workstation") or DEFAULT_WORKSTATION),
                )
            except (msgspec.DecodeError, KeyError, TypeError, ValueError, AttributeError) as exc:
                return plain(400, f'Send {{"UiEventType": "PatientSelected", "PatNum": 1}}: {exc}')
            return json_answer([asdict(d) for d in sent])

        return [
            Route("/_emulator/events", events_route, methods=["GET", "PUT"]),
            Route("/_emulator/events/poll", poll_route, methods=["POST"]),
            Route("/_emulator/events/ui", ui_route, methods=["POST"]),
        ]
