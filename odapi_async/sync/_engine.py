"""Incremental sync of many offices into a store (:class:`SyncSink`: SQLite or PostgreSQL), through the SDK's public API only.

Per office (one session, so one throttle per key) the resources run one after the other; offices run
concurrently and fail alone. Per resource:

- incremental (it has a "changed since" filter and a watermark): ask for rows changed since one second before the
  watermark (some filters mean "after", not "on or after"), upsert them, then save the new watermark;
- whole (no filter, no watermark yet, or ``reconcile``): list everything, upsert, then remove the rows the office
  no longer lists.

The new watermark is the earliest ``serverDateTime`` of the run's pages (the first page's, unless a page fetched
ahead was answered sooner), or, for resources whose rows do not carry it, the office's clock read before their
listing began. Either way it is a moment no later than the start of the
listing, so a row changed while the run pages is fetched again next time rather than missed. See docs/sync.md.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import secrets
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import anyio

from odapi_async import BadRequest, Gone, NotFound, OpenDental, OpenDentalError
from odapi_async import resources as _models
from odapi_async._syncspec import SyncSpec
from odapi_async.resources._generated._sync import SYNC
from odapi_async.sync._sink import SyncSink
from odapi_async.sync._store import ClaimLost, RunHolder, StoreFileError, SyncState, TableLayout
from odapi_async.sync._writer import StoreWriter, store_writer

#: Re-ask this much before the watermark: a filter that means "after" would otherwise miss a row changed in the
#: same second the watermark was read.
OVERLAP = dt.timedelta(seconds=1)
WATERMARK_FORMAT = "%Y-%m-%d %H:%M:%S"
#: Seconds an office's claim in the store lasts unless renewed (every third of it while the run goes on): how long
#: a dead process on another host, or one paused, keeps others off the office.
CLAIM_TTL = 30.0
#: Seconds a run waits for another run of the same office and store before it skips the office.
CLAIM_WAIT = 300.0
#: Resources whose rows carry ``serverDateTime`` run first: their first page also reads the office's clock.
_RULE_ORDER = {"serverDateTime": 0, "office-clock": 1, "none": 2}


def incremental_resources() -> list[str]:
    """The resources ``odapi sync`` copies by default: every one with an incremental list."""
    return [name for name, spec in SYNC.items() if spec.incremental]


def syncable_resources() -> list[str]:
    """Every resource a sync can copy (the others are whole listings each time)."""
    return list(SYNC)


def sync_specs(names: Iterable[str]) -> list[SyncSpec]:
    """The specs of ``names`` in the order a run takes them; ValueError naming the unknown ones."""
    names = list(dict.fromkeys(names))
    unknown = [n for n in names if n not in SYNC]
    if unknown:
        raise ValueError(f"cannot sync {', '.join(unknown)}: syncable resources are {', '.join(SYNC)}")
    return sorted((SYNC[n] for n in names), key=lambda s: _RULE_ORDER[s.watermark])


@dataclass
class OfficeConfig:
    """One office to sync: its name (the ``office`` column) and how to open its session."""

    name: str
    session: Callable[[], OpenDental]
    """Makes the office's session (keys stay inside it)."""
    customer_key: str | None = field(default=None, repr=False)
    """The office's customer key, for what needs it without a session: the API Events receiver checks the
    office's webhooks by it (``odapi sync --events``). Never shown in a repr."""


#: Answers that concern one resource's list, not the office: they fail that resource and the run goes on.
RESOURCE_ERRORS = (BadRequest, NotFound, Gone)


@dataclass
class ResourceResult:
    resource: str
    how: str  # "incremental", "whole", "reconcile" or "failed"
    rows: int = 0
    pages: int = 0
    removed: int = 0
    watermark: str | None = None
    note: str = ""
    error: str | None = None


@dataclass
class OfficeProgress:
    """Live counters of one office's run (read by a progress display while it runs)."""

    name: str
    resource: str = ""
    rows: int = 0
    pages: int = 0
    resource_rows: int = 0
    plan: dict[str, int | None] = field(default_factory=dict)
    """Rows each resource of the run is expected to bring: its last whole listing's size, 0 for an incremental
    run (changes only: one page), None when unknown (a first run)."""
    started: float = field(default_factory=time.monotonic)
    finished: float | None = None
    session: OpenDental | None = None
    results: list[ResourceResult] = field(default_factory=list)
    error: str | None = None
    skipped: str | None = None
    """Why the office was not synced at all: another run held it past the wait (not a failure)."""

    def throttle(self) -> dict[str, float]:
        """Requests, waits and seconds waited on the throttle so far, over every mode, plus the interval."""
        out = {"requests": 0.0, "waits": 0.0, "wait_time": 0.0, "interval": 0.0}
        if self.session is None:
            return out
        for stats in self.session.throttle_stats().values():
            out["requests"] += stats.requests
            out["waits"] += stats.waits
            out["wait_time"] += stats.wait_time
            out["interval"] = max(out["interval"], stats.interval)
        return out

    def eta(self) -> float | None:
        """Seconds left for the office, from the plan and the pace so far (on Remote, the throttle's interval);
        None while a resource of unknown size is still to come."""
        stats = self.throttle()
        page_rows = 100 if stats["interval"] else 1000  # Remote pages are 100 rows, Local/Service 1000
        finished = {r.resource for r in self.results}
        left_pages = 0.0
        for resource, rows in self.plan.items():
            if resource in finished:
                continue
            if rows is None:
                return None
            done = self.resource_rows if resource == self.resource else 0
            left_pages += max(0, rows - done) / page_rows + 1  # + the page that confirms the end
        if self.pages:
            per_page = max(stats["interval"], self.elapsed / self.pages)
        elif stats["interval"]:
            per_page = stats["interval"]
        else:
            return None
        return left_pages * per_page

    @property
    def failures(self) -> list[str]:
        """The office's error, or its resources' errors ("resource: error")."""
        if self.error:
            return [self.error]
        return [f"{r.resource}: {r.error}" for r in self.results if r.error]

    @property
    def elapsed(self) -> float:
        return (self.finished or time.monotonic()) - self.started


class _OfficeClock:
    """The office's "now", as read from the latest ``serverDateTime`` seen before a listing begins."""

    def __init__(self, od: OpenDental) -> None:
        self._od = od
        self.latest: dt.datetime | None = None

    def note(self, rows: Sequence[Any]) -> dt.datetime | None:
        server_time = getattr(rows[0], "serverDateTime", None) if rows else None
        if not isinstance(server_time, dt.datetime):
            return None
        if self.latest is None or server_time > self.latest:
            self.latest = server_time
        return server_time

    async def read(self) -> dt.datetime | None:
        """The clock now: one small request to a list whose rows carry serverDateTime (documented for providers)."""
        self.note(await self._od.providers.list(Limit=1).first_page())
        return self.latest


async def sync_office(
    office: OfficeConfig,
    store: SyncSink,
    specs: Sequence[SyncSpec],
    *,
    reconcile: bool = False,
    progress: OfficeProgress | None = None,
    claim_wait: float = CLAIM_WAIT,
) -> OfficeProgress:
    """Sync ``specs`` of one office into ``store``. Errors propagate (``sync_offices`` catches them).

    The run first claims the office in the store (one run per office of a store at a time, across processes):
    while another run holds it, it waits up to ``claim_wait`` seconds, then skips the office (``progress.skipped``
    says why; nothing is fetched or written). See docs/sync.md, "Overlapping runs".
    """
    progress = progress or OfficeProgress(office.name)
    run = secrets.token_hex(8)
    with store_writer(store) as writer:  # the store's own thread: every call to the store goes through it
        holder = await _claim(writer, store, office.name, run, claim_wait, progress)
        if holder is not None:
            progress.skipped = (
                f"another run ({holder.holder}, since {holder.started_at}) is syncing this office into the same "
                f"store; waited {claim_wait:g} s for it"
            )
            return progress
        try:
            await _holding_claim(
                writer,
                store,
                office.name,
                run,
                lambda: _sync_claimed(office, writer, store, specs, run, reconcile, progress),
            )
        finally:
            with anyio.CancelScope(shield=True), contextlib.suppress(Exception):
                # A release that fails (the file went bad) leaves a claim that lapses at its expiry.
                await writer.call(store.release, office.name, run)
    return progress


async def _claim(
    writer: StoreWriter, store: SyncSink, office: str, run: str, wait: float, progress: OfficeProgress
) -> RunHolder | None:
    """Take the office's claim, trying again for up to ``wait`` seconds; the holder when it stayed taken."""
    deadline = time.monotonic() + wait
    pause = 0.05
    try:
        while True:
            holder = await writer.call(store.claim, office, run, ttl=CLAIM_TTL)
            left = deadline - time.monotonic()
            if holder is None or left <= 0:
                return holder
            progress.resource = "waiting: another run"  # what the live display shows meanwhile
            await anyio.sleep(min(pause, left))
            pause = min(pause * 2, 1.0)
    finally:
        progress.resource = ""


async def _holding_claim(
    writer: StoreWriter, store: SyncSink, office: str, run: str, body: Callable[[], Awaitable[None]]
) -> None:
    """Run ``body`` while renewing the run's claim every third of its TTL; ClaimLost when another run took it.

    Errors come out as themselves, never wrapped in an ExceptionGroup (callers sort them by type): each task
    keeps its own and the group never sees one.
    """
    failed: list[Exception] = []
    lost = False

    async def keep(scope: anyio.CancelScope) -> None:
        nonlocal lost
        while True:
            await anyio.sleep(CLAIM_TTL / 3)
            try:
                held = await writer.call(store.renew, office, run, ttl=CLAIM_TTL)
            except Exception as exc:  # the file went bad: the run stops with that error
                failed.append(exc)
                held = True
            if not held:
                lost = True
            if failed or lost:
                scope.cancel()
                return

    async with anyio.create_task_group() as tg:
        tg.start_soon(keep, tg.cancel_scope)
        try:
            await body()
        except Exception as exc:
            failed.insert(0, exc)  # the body's own error first
        finally:
            tg.cancel_scope.cancel()
    if failed:
        raise failed[0]
    if lost:
        raise ClaimLost(office)


async def _sync_claimed(
    office: OfficeConfig,
    writer: StoreWriter,
    store: SyncSink,
    specs: Sequence[SyncSpec],
    run: str,
    reconcile: bool,
    progress: OfficeProgress,
) -> None:
    async with office.session() as od:
        progress.session = od
        clock = _OfficeClock(od)
        for spec in specs:
            state = await writer.call(store.state, office.name, spec.resource)
            progress.plan[spec.resource] = _expected_rows(spec, state, reconcile)
        for spec in specs:
            try:
                result = await _sync_resource(
                    od, office.name, writer, store, spec, clock, run, reconcile, progress
                )
            except RESOURCE_ERRORS as exc:
                # This resource only (an office too old for the list, a list the office does not serve): its
                # watermark stays, the other resources go on, and the run reports it as a failure.
                result = ResourceResult(spec.resource, "failed", error=f"{type(exc).__name__}: {exc}")
            progress.results.append(result)


async def _sync_resource(
    od: OpenDental,
    office: str,
    writer: StoreWriter,
    store: SyncSink,
    spec: SyncSpec,
    clock: _OfficeClock,
    run: str,
    reconcile: bool,
    progress: OfficeProgress,
) -> ResourceResult:
    layout = TableLayout(spec, getattr(_models, spec.model))
    await writer.call(store.prepare, layout)
    state = await writer.call(store.state, office, spec.resource)
    since = _parse_watermark(state.watermark) if state and spec.incremental else None
    listing = since is None or reconcile
    if not listing:
        how = "incremental"
    else:
        how = "reconcile" if reconcile and state and state.watermark else "whole"
    result = ResourceResult(spec.resource, how)
    progress.resource = spec.resource
    progress.resource_rows = 0

    # Office-clock resources: the watermark is the clock read before the listing starts.
    watermark: dt.datetime | None = None
    if spec.watermark == "office-clock":
        watermark = clock.latest or await clock.read()
        if watermark is None:
            result.note = "office clock unreadable: watermark not advanced"

    params: dict[str, Any] = {}
    if not listing and spec.since_param is not None and since is not None:
        params[spec.since_param] = since - OVERLAP
    if listing:
        await writer.call(store.begin_listing, office, spec.resource, run=run)
    paginator = getattr(getattr(od, spec.resource), spec.operation)(**params)
    async with contextlib.aclosing(paginator.pages()) as pages:
        async for page in pages:
            if spec.watermark == "serverDateTime":
                # The earliest of the run's pages: on unthrottled modes later pages are fetched ahead,
                # concurrently, and one may be answered before the first.
                served = clock.note(page)
                if served is not None and (watermark is None or served < watermark):
                    watermark = served
            await writer.call(store.write_page, layout, office, page, listing=listing, run=run)
            result.pages += 1
            result.rows += len(page)
            progress.pages += 1
            progress.rows += len(page)
            progress.resource_rows += len(page)

    deleted: list[int] = []
    if spec.deletion_log is not None and not listing and since is not None:
        deleted, note = await _logged_deletions(od, spec, since - OVERLAP)
        result.note = "; ".join(filter(None, (result.note, note)))
    if spec.incremental and watermark is None:
        # Nothing came back, or no clock: asking again from the old watermark next time loses nothing.
        watermark = since
    result.watermark = watermark.strftime(WATERMARK_FORMAT) if watermark else None
    result.removed = await writer.call(
        store.finish,
        layout,
        office,
        watermark=result.watermark,
        listing=listing,
        listed_rows=result.rows,
        deleted=deleted,
        run=run,
    )
    return result


async def _logged_deletions(od: OpenDental, spec: SyncSpec, since: dt.datetime) -> tuple[list[int], str]:
    """Keys the office's deletion log names since ``since`` (a day filter: the day is read again, harmlessly).

    Read after the listing: a row deleted meanwhile is listed first and removed here, never the reverse. An office
    too old for the log (400) keeps its rows until a reconcile pass; the note says so.
    """
    log = spec.deletion_log
    assert log is not None
    lister = getattr(getattr(od, log.resource), log.operation)
    try:
        rows = await lister(**dict(log.filters), **{log.since_param: since.date()}).collect()
    except BadRequest as exc:
        return [], f"deletions not read ({log.resource}: {exc.explanation or exc}); use --reconcile"
    return sorted({getattr(row, log.key) for row in rows}), ""


def _expected_rows(spec: SyncSpec, state: SyncState | None, reconcile: bool) -> int | None:
    if state is None:
        return None
    if spec.incremental and state.watermark and not reconcile:
        return 0
    return state.listed_rows


def _parse_watermark(text: str | None) -> dt.datetime | None:
    return dt.datetime.strptime(text, WATERMARK_FORMAT) if text else None


async def sync_offices(
    offices: Sequence[OfficeConfig],
    store: SyncSink,
    specs: Sequence[SyncSpec],
    *,
    reconcile: bool = False,
    progress: Mapping[str, OfficeProgress] | None = None,
    claim_wait: float = CLAIM_WAIT,
) -> list[OfficeProgress]:
    """Sync every office concurrently; an office that fails is reported in its ``error`` (a resource that fails,
    in its result's ``error``; a write of its rows the store refuses, too), the others go on.

    A failure of the store as a whole (:class:`StoreFileError`: disk full, read-only, not a database, locked too
    long) stops every office and is raised, alone, once they have stopped: the file keeps what was committed.
    """
    tracked = {o.name: (progress or {}).get(o.name) or OfficeProgress(o.name) for o in offices}
    fatal: list[StoreFileError] = []

    async def one(office: OfficeConfig, scope: anyio.CancelScope) -> None:
        entry = tracked[office.name]
        try:
            await sync_office(
                office, store, specs, reconcile=reconcile, progress=entry, claim_wait=claim_wait
            )
        except StoreFileError as exc:
            entry.error = f"{type(exc).__name__}: {exc}"
            fatal.append(exc)
            scope.cancel()
        except (OpenDentalError, OSError, ValueError) as exc:
            entry.error = f"{type(exc).__name__}: {exc}"
        finally:
            entry.finished = time.monotonic()

    async with anyio.create_task_group() as tg:
        for office in offices:
            tg.start_soon(one, office, tg.cancel_scope)
    if fatal:
        raise fatal[0]
    return list(tracked.values())
