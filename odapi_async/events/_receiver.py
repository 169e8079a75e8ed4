"""The :class:`EventReceiver`: authenticate a webhook call, decode it, drop what was seen, queue the rest and
answer; run the handlers afterwards, in the background.

The answer never waits for a handler: Open Dental resends a call that is slow to answer, so a slow handler
would turn into duplicate deliveries. Handlers of one record (office, table, primary key) run in order;
different records run in parallel, on ``concurrency`` workers. A handler that raises (or outlasts
``handler_timeout``) is retried a few times with backoff, then the event is marked failed (and logged without
its data); a record waiting for its retry holds no worker, only its own later events.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import logging
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable, Hashable, Iterable, Mapping
from types import TracebackType
from typing import Any, TypeVar

import anyio
from anyio.abc import TaskGroup, TaskStatus
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from odapi_async.events._asgi import EventsApp
from odapi_async.events._batch import BadEvent, decode_call, parse_event_type
from odapi_async.events._models import KNOWN_TYPES, UI_EVENT, WATCH_TABLE, Event, EventKind
from odapi_async.events._store import EventStore, MemoryEventStore, StoreFull

logger = logging.getLogger("odapi_async.events")

Handler = Callable[[Event[Any]], Awaitable[None]]
H = TypeVar("H", bound=Handler)

#: The API's own body limit ("about 16.8 million characters"): a call larger than that is not Open Dental.
DEFAULT_MAX_BODY = 16_777_216
_TAKE = 256
#: Events taken from the store and not yet acknowledged, at most.
_IN_FLIGHT = 4096
#: Records a worker handles in a row before it lets other tasks run (when their handlers never wait).
_RUN = 64


class EventReceiver:
    """Receives Open Dental API Events (webhooks) and hands each new row to your handlers once.

    ``customer_keys`` is a list of keys, or a mapping ``{office label: key}``; a handler sees the label of the
    key that authenticated the call as ``event.office`` (for a list, ``"office-<8 hex>"`` derived from the key).
    Run it with ``async with receiver:`` (the ASGI app from :meth:`asgi` does so on its own lifespan).
    """

    def __init__(
        self,
        customer_keys: Iterable[str] | Mapping[str, str],
        *,
        store: EventStore | None = None,
        concurrency: int = 8,
        handler_timeout: float = 60.0,
        retries: int = 3,
        retry_backoff: float = 0.5,
        max_body_bytes: int = DEFAULT_MAX_BODY,
        drain_timeout: float = 5.0,
    ) -> None:
        if isinstance(customer_keys, (str, bytes)):
            raise TypeError("customer_keys is a list of keys or a mapping {label: key}, not one string")
        pairs = list(customer_keys.items()) if isinstance(customer_keys, Mapping) else None
        if pairs is None:
            pairs = [(_label(k), k) for k in customer_keys]
        if not pairs:
            raise ValueError("at least one customer key is needed")
        for _, key in pairs:
            if not isinstance(key, str) or not key.strip():
                raise ValueError("customer keys must be non-empty strings")
        self._keys: tuple[tuple[str, bytes], ...] = tuple(
            (label, key.strip().encode()) for label, key in pairs
        )
        if concurrency < 1 or retries < 0 or handler_timeout <= 0 or max_body_bytes < 1 or drain_timeout < 0:
            raise ValueError("concurrency, handler_timeout and max_body_bytes must be positive")
        self.store: EventStore = store if store is not None else MemoryEventStore()
        self.concurrency = concurrency
        self.handler_timeout = handler_timeout
        self.retries = retries
        self.retry_backoff = retry_backoff
        self.max_body_bytes = max_body_bytes
        self.drain_timeout = drain_timeout
        self._handlers: dict[tuple[EventKind, str], list[Handler]] = {}
        self._running = False
        self._wake = anyio.Event()
        self._progress = anyio.Event()
        self._tg: TaskGroup | None = None
        self._workers_scope: anyio.CancelScope | None = None
        self._workers_done = anyio.Event()
        self._ack_send: MemoryObjectSendStream[list[tuple[int, bool]]] | None = None
        self._unhandled_logged: set[tuple[str, str]] = set()
        self.stats: dict[str, int] = dict.fromkeys(
            ("calls", "rows", "new", "duplicates", "handled", "failed", "unauthorized", "refused"), 0
        )

    def __repr__(self) -> str:  # never the keys
        return f"<EventReceiver offices={len(self._keys)} running={self._running}>"

    # -- handlers ------------------------------------------------------------------------------------------
    def on(self, table: str) -> Callable[[H], H]:
        """Register an async handler for a database event (``"Appointment"``, ``"Patient"``…)."""
        return self._register(WATCH_TABLE, table)

    def on_ui(self, event_type: str) -> Callable[[H], H]:
        """Register an async handler for a UI event (``"PatientSelected"``)."""
        return self._register(UI_EVENT, event_type)

    def _register(self, kind: EventKind, name: str) -> Callable[[H], H]:
        if not name or not isinstance(name, str):
            raise ValueError("name the table or UI event type to handle")

        def decorator(fn: H) -> H:
            self._handlers.setdefault((kind, name), []).append(fn)
            return fn

        return decorator

    # -- one call ------------------------------------------------------------------------------------------
    async def handle(
        self,
        headers: Mapping[str, str] | Iterable[tuple[str, str]],
        body: bytes,
        *,
        event_type: str | None = None,
    ) -> tuple[int, str]:
        """Do what the ASGI app does with one call; return ``(status, text)`` to answer with.

        ``event_type`` (``"WatchTable: Appointment"``) stands in for a missing ``Event-Type`` header: Open Dental
        sends it from version 22.4.35 on; for older offices give each subscription its own URL and type.

        200 once the new rows are durably queued; 400 for a call that cannot be read (nothing is kept);
        401 for a wrong key; 503 when not running or the queue is full (Open Dental resends later).
        """
        self.stats["calls"] += 1
        h = _lower(headers)
        office = self._authenticate(h.get("authorization", ""))
        if office is None:
            self.stats["unauthorized"] += 1
            return 401, "Unauthorized"
        if len(body) > self.max_body_bytes:
            self.stats["refused"] += 1
            return 400, f"The body is larger than {self.max_body_bytes} bytes."
        try:
            kind, name = parse_event_type(h.get("event-type") or event_type)
            entries = decode_call(
                kind,
                name,
                body,
                office=office,
                workstation=h.get("workstation", ""),
                received_at=dt.datetime.now(dt.timezone.utc),
            )
        except BadEvent as exc:
            self.stats["refused"] += 1
            return 400, f"Bad event: {exc}."
        if not self._running:
            self.stats["refused"] += 1
            logger.warning(
                "API event refused: the EventReceiver is not running (enter `async with receiver:`)"
            )
            return 503, "The receiver is not running."
        enqueue = (kind, name) in self._handlers
        if not enqueue and (kind, name) not in self._unhandled_logged:
            self._unhandled_logged.add((kind, name))
            logger.info("no handler for API event %s: %s; its rows are acknowledged and dropped", kind, name)
        try:
            new = await self.store.put(entries, enqueue=enqueue, now=time.time())
        except StoreFull:
            self.stats["refused"] += 1
            logger.warning("API event refused: the event queue is full")
            return 503, "The event queue is full; send again later."
        self.stats["rows"] += len(entries)
        self.stats["new"] += new
        self.stats["duplicates"] += len(entries) - new
        if new and enqueue:
            self._wake.set()
        return 200, f"OK: {new} new, {len(entries) - new} duplicate."

    def _authenticate(self, given: str) -> str | None:
        token = given.strip().encode("utf-8", "replace")
        found = None
        for label, key in self._keys:  # compare with every key: the time taken says nothing about which
            if hmac.compare_digest(token, key):
                found = label
        return found

    # -- running -------------------------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self._running

    async def __aenter__(self) -> EventReceiver:
        if self._tg is not None:
            raise RuntimeError("the receiver is already running")
        await self.store.open()
        self._wake, self._progress = anyio.Event(), anyio.Event()  # bound to this event loop
        tg = anyio.create_task_group()
        await tg.__aenter__()
        self._tg = tg
        try:
            ack_send, ack_recv = anyio.create_memory_object_stream[list[tuple[int, bool]]](_TAKE)
            self._ack_send = ack_send
            tg.start_soon(self._acker, ack_recv)
            self._workers_done = anyio.Event()
            await tg.start(self._workers)
        except BaseException as exc:
            tg.cancel_scope.cancel()
            await tg.__aexit__(type(exc), exc, exc.__traceback__)
            self._tg = None
            await self.store.close()
            raise
        self._running = True
        self._wake.set()  # a durable store may hold events from before a restart
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        tg, self._tg = self._tg, None
        if tg is None:
            return
        self._running = False
        try:
            with anyio.CancelScope(shield=True):
                await self._drain()
                if self._workers_scope is not None:
                    self._workers_scope.cancel()
                with anyio.move_on_after(5.0):
                    await self._workers_done.wait()
                if self._ack_send is not None:
                    await self._ack_send.aclose()  # the acker records what is left, then ends
        finally:
            try:
                await tg.__aexit__(exc_type, exc, tb)
            finally:
                await self.store.close()

    async def _drain(self) -> None:
        """Give queued events up to ``drain_timeout`` to be handled before stopping."""
        with anyio.move_on_after(self.drain_timeout):
            await self._until_idle()

    async def join(self) -> None:
        """Wait until every queued event has been handled (bound it with ``anyio.fail_after``)."""
        await self._until_idle()

    async def _until_idle(self) -> None:
        while True:
            progress = self._progress  # taken before the check: the acker sets this very object next
            if self.store.outstanding() == 0:
                return
            await progress.wait()

    async def _workers(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        ready_send, ready_recv = anyio.create_memory_object_stream[_Record](math.inf)
        try:
            async with ready_send, ready_recv, anyio.create_task_group() as tg:
                self._workers_scope = tg.cancel_scope
                room = _Room(_IN_FLIGHT)
                records: dict[Hashable, _Record] = {}
                for _ in range(self.concurrency):
                    tg.start_soon(self._worker, ready_recv.clone(), ready_send, records, room, tg)
                tg.start_soon(self._dispatch, ready_send.clone(), records, room)
                task_status.started()
        finally:
            self._workers_done.set()

    async def _dispatch(
        self, ready: MemoryObjectSendStream[_Record], records: dict[Hashable, _Record], room: _Room
    ) -> None:
        """Take queued events and hand each to its record: a record not yet active becomes ready for a worker;
        an active one (running, or waiting for a retry) gets the event after those it has."""
        async with ready:
            while True:
                await room.wait()
                self._wake = anyio.Event()
                events = await self.store.take(min(_TAKE, room.free))
                if not events:
                    self._signal_progress()  # a store that only now knows it is empty lets join() return
                    with anyio.move_on_after(1.0):  # a bound: also picks up anything a missed wake-up left
                        await self._wake.wait()
                    continue
                room.take(len(events))
                for event in events:
                    key = _record_of(event)
                    record = records.get(key)
                    if record is None:
                        records[key] = record = _Record(key)
                        record.events.append(event)
                        ready.send_nowait(record)
                    else:
                        record.events.append(event)

    async def _worker(
        self,
        ready_recv: MemoryObjectReceiveStream[_Record],
        ready: MemoryObjectSendStream[_Record],
        records: dict[Hashable, _Record],
        room: _Room,
        tg: TaskGroup,
    ) -> None:
        """Run ready records' handlers. A handler that fails is retried later, from a timer of its own, so the
        worker goes on with other records meanwhile; a record's next events wait for it (order per record)."""
        assert self._ack_send is not None
        ack = self._ack_send.clone()
        async with ready_recv, ack:
            run = 0
            while True:
                # Without a wait while records are ready: the acker, which runs when this worker waits, then
                # gathers many acknowledgements into one store write. A pause every _RUN records lets others in.
                run += 1
                try:
                    if run % _RUN == 0:
                        raise anyio.WouldBlock
                    record = ready_recv.receive_nowait()
                except anyio.WouldBlock:
                    try:
                        record = await ready_recv.receive()
                    except anyio.EndOfStream:
                        return
                while record.events:
                    event = record.events[0]
                    retry_in = await self._run_handlers(event, record)
                    if retry_in is not None:
                        tg.start_soon(_ready_later, ready, record, retry_in)
                        break
                    record.events.popleft()
                    self.stats["handled" if record.ok else "failed"] += 1
                    done = [(event.seq, record.ok)]
                    record.ok, record.handler, record.attempt = True, 0, 0
                    try:  # no wait when there is room: the acker gathers what came meanwhile into one write
                        ack.send_nowait(done)
                    except anyio.WouldBlock:
                        await ack.send(done)
                    room.give(1)
                else:
                    del records[
                        record.key
                    ]  # no await since the check: an event the dispatcher adds finds none

    async def _run_handlers(self, event: Event[Any], record: _Record) -> float | None:
        """Go on with ``event``'s handlers from where ``record`` left them; seconds until a retry is due, or None
        once every handler has run (``record.ok`` says whether all succeeded)."""
        handlers = self._handlers.get((event.kind, event.type), ())
        while record.handler < len(handlers):
            handler = handlers[record.handler]
            try:
                with anyio.fail_after(self.handler_timeout):
                    await handler(event)
            except Exception as exc:
                if record.attempt < self.retries:
                    record.attempt += 1
                    return min(self.retry_backoff * 2.0 ** (record.attempt - 1), 30.0)
                record.ok = False
                # the exception's text may quote the row (patient data): log its type only
                logger.error(
                    "handler %s failed for %s after %d attempts: %s",
                    getattr(handler, "__qualname__", handler),
                    event,
                    record.attempt + 1,
                    type(exc).__name__,
                )
            record.handler += 1
            record.attempt = 0
        return None

    async def _acker(self, recv: MemoryObjectReceiveStream[list[tuple[int, bool]]]) -> None:
        """Record handled events in batches (one store write for many events)."""
        async with recv:
            async for first in recv:
                batch = list(first)
                while len(batch) < 1024:
                    try:
                        batch += recv.receive_nowait()
                    except (anyio.WouldBlock, anyio.EndOfStream):
                        break
                done = [seq for seq, ok in batch if ok]
                failed = [seq for seq, ok in batch if not ok]
                with anyio.CancelScope(shield=True):
                    await self.store.done(done)
                    await self.store.failed(failed)
                self._signal_progress()

    def _signal_progress(self) -> None:
        progress, self._progress = self._progress, anyio.Event()
        progress.set()

    # -- ASGI ----------------------------------------------------------------------------------------------
    def asgi(self, *, lifespan: bool = True, event_type: str | None = None) -> Any:
        """An ASGI app answering webhook POSTs at any path (see :class:`~odapi_async.events.EventsApp`);
        ``lifespan=False`` when mounted in an app whose own lifespan runs the receiver."""
        return EventsApp(self, lifespan=lifespan, event_type=event_type)


def _lower(headers: Mapping[str, str] | Iterable[tuple[str, str]]) -> dict[str, str]:
    items = headers.items() if isinstance(headers, Mapping) else headers
    return {str(k).lower(): str(v) for k, v in items}


def _label(key: str) -> str:
    return "office-" + hashlib.sha256(key.strip().encode()).hexdigest()[:8]


class _Record:
    """One record's events still to handle, in order, and where its head event's handlers stand."""

    __slots__ = ("attempt", "events", "handler", "key", "ok")

    def __init__(self, key: Hashable) -> None:
        self.key = key
        self.events: deque[Event[Any]] = deque()
        self.handler = 0  # the head event's next handler
        self.attempt = 0  # attempts of that handler so far that failed
        self.ok = True  # every handler of the head event so far succeeded


class _Room:
    """How many events may be taken from the store and not yet acknowledged (a bound on what is in memory)."""

    def __init__(self, size: int) -> None:
        self.free = size
        self._freed = anyio.Event()

    async def wait(self) -> None:
        while self.free <= 0:
            self._freed = anyio.Event()
            await self._freed.wait()

    def take(self, n: int) -> None:
        self.free -= n

    def give(self, n: int) -> None:
        self.free += n
        self._freed.set()


async def _ready_later(ready: MemoryObjectSendStream[_Record], record: _Record, delay: float) -> None:
    await anyio.sleep(delay)
    ready.send_nowait(record)


def _record_of(event: Event[Any]) -> Hashable:
    """What orders events: the record (office, table family, primary key) its row is."""
    known = KNOWN_TYPES.get((event.kind, event.type))
    if known is None:
        return ("seq", event.seq)  # an unknown type has no known primary key: no order to keep
    return (event.office, known.family, getattr(event.row, known.primary_key, None))
