"""Keeping a sync database current from API Events between incremental sweeps (``odapi sync --events``).

The office's program POSTs changed rows of the watched tables to our receiver within ``PollingSeconds``; each
row is upserted into the same table the sweep writes (``AppointmentDeleted`` removes the appointment). Events
are at-least-once and may be lost while the receiver is down, so the incremental sweep stays the safety net:
it runs on its schedule whatever the events did, and an event row written twice is the same upsert.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import anyio
import msgspec

from odapi_async import ConfigurationError
from odapi_async import resources as _models
from odapi_async.events import EventReceiver, SubscriptionSpec
from odapi_async.events._models import AnyEvent
from odapi_async.sync._engine import OfficeConfig
from odapi_async.sync._sink import SyncSink
from odapi_async.sync._store import TableLayout

__all__ = ["EVENT_TABLES", "follow_subscriptions", "make_event_receiver"]

#: Watched table → the synced resource its rows go to.
EVENT_TABLES: dict[str, str] = {
    "Appointment": "appointments",
    "Patient": "patients",
    "PatField": "patfields",
    "Operatory": "operatories",
    "Provider": "providers",
    "Schedule": "schedules",
    "ToothInitial": "toothinitials",
}
_DELETED = {"AppointmentDeleted": "appointments"}


def watched_tables(resources: Iterable[str]) -> list[str]:
    """The watched tables that feed ``resources`` (deletions included)."""
    wanted = set(resources)
    tables = [t for t, r in EVENT_TABLES.items() if r in wanted]
    return tables + [t for t, r in _DELETED.items() if r in wanted]


def make_event_receiver(
    offices: Iterable[OfficeConfig], store: SyncSink, resources: Iterable[str], **receiver_options: Any
) -> EventReceiver:
    """A receiver that writes each office's event rows into ``store`` (use ``async with`` and its ``asgi()``)."""
    from odapi_async.sync import SYNC  # the sync metadata: one truth with the sweep

    keys = {office.name: _customer_key(office) for office in offices}
    receiver = EventReceiver(keys, **receiver_options)
    wanted = set(resources)
    for table, resource in {**EVENT_TABLES, **_DELETED}.items():
        if resource not in wanted:
            continue
        model = getattr(_models, SYNC[resource].model)
        layout = TableLayout(SYNC[resource], model)
        store.prepare(layout)
        if table in _DELETED:
            receiver.on(table)(_remover(store, layout))
        else:
            receiver.on(table)(_writer(store, layout, model))
    return receiver


def _writer(store: SyncSink, layout: TableLayout, model: type[Any]) -> Any:
    async def write(event: AnyEvent) -> None:
        # The event's model may differ from the list's (patients sync through Simple): keep the fields both have.
        row = (
            event.row if type(event.row) is model else msgspec.convert(msgspec.to_builtins(event.row), model)
        )
        await anyio.to_thread.run_sync(lambda: store.write_page(layout, event.office, [row], listing=False))

    return write


def _remover(store: SyncSink, layout: TableLayout) -> Any:
    async def remove(event: AnyEvent) -> None:
        await anyio.to_thread.run_sync(lambda: store.remove(layout, event.office, [layout.key(event.row)]))

    return remove


async def follow_subscriptions(
    offices: Iterable[OfficeConfig], url: str, tables: Iterable[str], *, polling_seconds: int
) -> dict[str, int]:
    """Make each office's subscriptions to ``url`` cover ``tables`` (others of the office are kept).

    Returns the subscriptions created per office.
    """
    specs = [SubscriptionSpec(url, WatchTable=t, PollingSeconds=polling_seconds) for t in tables]
    created: dict[str, int] = {}
    for office in offices:
        async with office.session() as od:
            result = await od.subscriptions.ensure(specs, prune=False)
        created[office.name] = len(result.created)
    return created


def _customer_key(office: OfficeConfig) -> str:
    # The receiver authenticates the office's webhooks by its customer key.
    key = (office.customer_key or "").strip()
    if not key:
        raise ConfigurationError(
            f"office {office.name!r}: API Events need its customer key (OfficeConfig customer_key=...) to check "
            "the office's webhooks"
        )
    return key
