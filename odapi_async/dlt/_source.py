"""``opendental_source``: one dlt resource per Open Dental resource, fed by the sync engine's rules.

Per resource and office, the rules of ``odapi_async.sync`` (docs/sync.md), with dlt keeping the state:

- the watermark of each office is kept in the resource's dlt state (``watermarks``), which dlt saves with the
  load package that carries the rows it covers: a run killed at any point leaves the old watermark, or the new
  one with its rows in a package that the next run loads first;
- with a watermark, ask for the rows changed since one second before it; without one, list the resource whole;
- the new watermark is the earliest ``serverDateTime`` of the run's pages, or the office's clock read before the
  listing began, never the largest stamp of the rows (a row changed on a page already fetched, while the run
  pages on, carries a stamp below later rows' and would be missed);
- rows are merged by (office, primary key); deletions the office logs (appointments) arrive as rows marked for
  dlt's ``hard_delete``;
- a resource without an incremental filter is listed whole, each office's complete listing replacing that
  office's rows (``merge_key = office``).

Why not ``dlt.sources.incremental``: it keeps one cursor per resource (offices have their own clocks), advances
it to the largest cursor value of the rows (unsafe here, see above), and drops rows below it.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections.abc import AsyncIterator, Sequence
from typing import Any, Literal

import dlt
from dlt.common import logger
from dlt.extract import DltResource, DltSource

from odapi_async import OpenDental, OpenDentalError
from odapi_async import resources as _models
from odapi_async.dlt._columns import DELETED_COLUMN, DltTable
from odapi_async.dlt._failures import FAILED
from odapi_async.dlt._offices import OfficeHost, OfficeHosts, Offices, office_configs
from odapi_async.sync import SyncSpec, incremental_resources, sync_specs
from odapi_async.sync._engine import OVERLAP, RESOURCE_ERRORS, WATERMARK_FORMAT, _logged_deletions

#: The patient status that marks a deleted patient (Open Dental keeps the row).
DELETED_STATUS = "Deleted"
#: Pages waiting for dlt per office: enough to keep the listings busy, few enough to bound memory.
PAGES_AHEAD = 4

OFFICE_ERRORS = (OpenDentalError, OSError, ValueError)


def opendental_source(
    offices: Offices,
    resources: Sequence[str] | None = None,
    *,
    developer_key: str | None = None,
    deleted_patients: Literal["keep", "delete"] = "keep",
    name: str = "opendental",
) -> DltSource:
    """A dlt source of ``resources`` (default: every resource with an incremental list) of ``offices``.

    ``offices``: an offices file (path or loaded), or a list of :class:`~odapi_async.sync.OfficeConfig` /
    :class:`~odapi_async.sync.OfficeEntry`. ``developer_key`` serves offices file entries whose file names none.
    ``deleted_patients="delete"`` removes patients whose status is ``Deleted`` from the destination (Open Dental
    and ``odapi sync`` keep them). Unknown resources, a bad offices file or repeated office names raise
    ``ValueError`` here, before any request.
    """
    if deleted_patients not in ("keep", "delete"):
        raise ValueError(f"deleted_patients must be 'keep' or 'delete'; got {deleted_patients!r}")
    configs = office_configs(offices, developer_key)
    specs = sync_specs(resources if resources is not None else incremental_resources())
    hosts = OfficeHosts(configs)
    names = [o.name for o in configs]

    def opendental() -> list[DltResource]:
        return [_resource(spec, names, hosts, deleted_patients) for spec in specs]

    # No arguments: dlt injects configuration into a source's arguments and records them; keys stay out.
    return dlt.source(opendental, name=name, max_table_nesting=0)()


def _resource(
    spec: SyncSpec, offices: Sequence[str], hosts: OfficeHosts, deleted_patients: str
) -> DltResource:
    marks_patients = spec.resource == "patients" and deleted_patients == "delete"
    table = DltTable(
        spec,
        getattr(_models, spec.model),
        deletions=spec.deletion_log is not None or marks_patients or not spec.incremental,
    )

    async def rows() -> AsyncIterator[list[dict[str, Any]]]:
        # This generator only passes on what the listing tasks produce: dlt runs each of its steps in a task
        # of its own, and a session or paginator must stay in one task (see _offices.py).
        watermarks: dict[str, str] = dlt.current.resource_state().setdefault("watermarks", {})
        failures: dict[str, str] = dlt.current.resource_metrics().setdefault(FAILED, {})
        queue: asyncio.Queue[tuple[str, str, Any]] = asyncio.Queue(maxsize=PAGES_AHEAD * len(offices))
        listing = _Listing(table, marks_patients)
        loop = asyncio.get_running_loop()
        tasks = [
            loop.create_task(listing.run(hosts.host(office), office, watermarks.get(office), queue))
            for office in offices
        ]
        left = len(tasks)
        try:
            while left:
                kind, office, value = await queue.get()
                if kind == "rows":
                    yield value
                elif kind == "note":
                    logger.warning(f"odapi_async.dlt: {spec.resource}, office {office}: {value}")
                elif kind == "done":
                    left -= 1
                    if value is not None:
                        watermarks[office] = value
                elif kind == "failed":  # this office's rows of this resource wait for the next run
                    left -= 1
                    failures[office] = value
                    logger.error(f"odapi_async.dlt: {spec.resource}, office {office} failed: {value}")
                else:
                    raise value
        finally:
            for task in tasks:
                task.cancel()

    # Listed whole: the office's rows in this load replace all of its rows (deleted ones go away).
    merge_key = None if spec.incremental else ("office",)
    return dlt.resource(  # type: ignore[call-overload,no-any-return]
        rows,
        name=spec.resource,
        table_name=spec.resource,
        primary_key=table.primary_key,
        merge_key=merge_key,
        write_disposition={"disposition": "merge", "strategy": "delete-insert"},
        columns=table.columns,
    )()


class _Listing:
    """One resource's listing of one office, in a task of its own; results go to the resource's queue."""

    def __init__(self, table: DltTable, marks_patients: bool) -> None:
        self.table = table
        self.spec = table.spec
        self.marks_patients = marks_patients

    async def run(
        self,
        host: OfficeHost,
        office: str,
        watermark: str | None,
        queue: asyncio.Queue[tuple[str, str, Any]],
    ) -> None:
        try:
            try:
                od = await host.acquire()
                new_watermark = await self._list(od, host, office, watermark, queue)
            finally:
                host.release()
        except (*RESOURCE_ERRORS, *OFFICE_ERRORS) as exc:
            await queue.put(("failed", office, f"{type(exc).__name__}: {exc}"))
        except Exception as exc:  # not the office's doing (a bug): the resource raises it, failing the run
            await queue.put(("error", office, exc))
        else:
            await queue.put(("done", office, new_watermark))

    async def _list(
        self,
        od: OpenDental,
        host: OfficeHost,
        office: str,
        watermark: str | None,
        queue: asyncio.Queue[tuple[str, str, Any]],
    ) -> str | None:
        spec, table = self.spec, self.table
        since = dt.datetime.strptime(watermark, WATERMARK_FORMAT) if watermark and spec.incremental else None
        new: dt.datetime | None = None
        if spec.watermark == "office-clock":
            new = await host.clock(od)
            if new is None:
                await queue.put(("note", office, "office clock unreadable: watermark not advanced"))
        params: dict[str, Any] = {}
        if since is not None and spec.since_param is not None:
            params[spec.since_param] = since - OVERLAP
        held: list[list[dict[str, Any]]] = []  # a whole listing is passed on only once complete
        paginator = getattr(getattr(od, spec.resource), spec.operation)(**params)
        async with contextlib.aclosing(paginator.pages()) as pages:
            async for page in pages:
                served = host.note(page)
                if (
                    spec.watermark == "serverDateTime"
                    and served is not None
                    and (new is None or served < new)
                ):
                    new = served
                out = [table.row(office, item) for item in page]
                if self.marks_patients:
                    for row, item in zip(out, page, strict=True):
                        row[DELETED_COLUMN] = item.PatStatus == DELETED_STATUS
                if spec.incremental:
                    await queue.put(("rows", office, out))
                else:
                    held.append(out)
        for out in held:
            await queue.put(("rows", office, out))
        if not spec.incremental and not held:
            # An empty complete listing: one deletion row, so that the office's old rows are replaced by none.
            await queue.put(("rows", office, [table.deletion(office, 0)]))
        if spec.deletion_log is not None and since is not None:
            deleted, note = await _logged_deletions(od, spec, since - OVERLAP)
            if note:  # the engine's note names odapi sync's flag; the dlt way to reconcile is a refresh
                note = note.replace("use --reconcile", 'a run with refresh="drop_data" removes them')
                await queue.put(("note", office, note))
            if deleted:
                await queue.put(("rows", office, [table.deletion(office, key) for key in deleted]))
        if spec.incremental and new is None:
            new = since  # nothing came back, or no clock: asking again from the old watermark loses nothing
        return new.strftime(WATERMARK_FORMAT) if new is not None else None
