"""A sync run as Celery tasks: one task per office, the shared Redis throttle, one PostgreSQL database.

For shops that already run Celery: instead of ``odapi sync --redis`` workers, the job system hands out the
offices. Each task syncs one office of the offices file into the database and returns its summary; ``sync_all``
queues one task per office. What keeps it right when tasks overlap, retry or die:

- **the throttle is shared**: every worker process's sessions use one ``RedisThrottle`` on the same Redis, so the
  tasks of all workers together never exceed a customer key's Remote interval;
- **one run per office**: the store's claim (``odapi_sync_run``) lets one task sync an office at a time; a second
  task for the same office waits ``CLAIM_WAIT`` seconds, then reports it skipped (another task syncs it);
- **a killed task costs nothing but time**: every page is one transaction and a watermark is saved only after the
  rows it covers, so the retry (``acks_late``: the broker hands an unacknowledged task out again) goes on from the
  last watermark.

Configuration, from the environment of the worker (and of whoever queues the tasks):

    CELERY_BROKER_URL   redis://redis.internal:6379/1   the broker (and the result backend)
    ODAPI_REDIS_URL     redis://redis.internal:6379/0   the shared throttle
    ODAPI_SYNC_DB       postgresql://odapi@db.internal/practice   (the password: PGPASSWORD or ~/.pgpass)
    ODAPI_OFFICES       /srv/odapi/offices.toml          the offices file (docs/sync.md)
    ODAPI_DEVELOPER_KEY ...                              unless the offices file names it

Run a worker, then queue a round (from cron, Celery beat, or by hand):

    celery -A examples.celery_sync worker --concurrency 4
    python -c "from examples.celery_sync import sync_all; print(sync_all.delay().get())"

Needs ``pip install "odapi-async[postgres,redis]" celery[redis]``. ``tests/sync/test_celery_example.py`` runs
this module in a real Celery worker process against the emulator, Redis and PostgreSQL.
"""

from __future__ import annotations

import os
from typing import Any

import anyio
from celery import Celery, group
from celery.signals import worker_process_init

from odapi_async import OpenDental, RedisThrottle, default_hub
from odapi_async.sync import (
    OfficeConfig,
    OfficeProgress,
    incremental_resources,
    load_offices,
    open_store,
    sync_office,
    sync_specs,
)

#: Seconds a task waits for an office another task is syncing, before it reports the office skipped.
CLAIM_WAIT = 60.0

app = Celery("odapi_sync", broker=os.environ.get("CELERY_BROKER_URL", "redis://localhost:6379/1"))
app.conf.update(
    result_backend=app.conf.broker_url,
    task_acks_late=True,  # a task whose worker died is handed out again
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,  # offices are long tasks: do not hoard them
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    broker_connection_retry_on_startup=True,
)


@worker_process_init.connect
def _share_the_throttle(**_: Any) -> None:
    """In every worker process: all sessions take their turns from Redis (one throttle for the whole fleet)."""
    url = os.environ.get("ODAPI_REDIS_URL")
    if url:
        default_hub.throttle = RedisThrottle(url)


def _office(name: str) -> OfficeConfig:
    offices = load_offices(os.environ["ODAPI_OFFICES"])
    developer_key = offices.developer_key or os.environ.get("ODAPI_DEVELOPER_KEY")
    found = [entry for entry in offices.offices if entry.name == name]
    if not found:
        raise ValueError(f"office {name!r} is not in {os.environ['ODAPI_OFFICES']}")
    entry = found[0]

    def session() -> OpenDental:
        return OpenDental(
            developer_key,
            entry.customer_key,
            modes=entry.modes,  # type: ignore[arg-type]
            endpoints=entry.endpoints,
            service_host=entry.service_host,
            tier=entry.tier,  # type: ignore[arg-type]
            intervals=entry.intervals,  # type: ignore[arg-type]
        )

    return OfficeConfig(entry.name, session, customer_key=entry.customer_key)


def _summary(progress: OfficeProgress) -> dict[str, Any]:
    return {
        "office": progress.name,
        "ok": not progress.failures,
        "rows": progress.rows,
        "skipped": progress.skipped,
        "failures": progress.failures,
        "resources": {
            r.resource: {"how": r.how, "rows": r.rows, "removed": r.removed} for r in progress.results
        },
    }


@app.task(name="odapi.sync_office")
def sync_office_task(
    office: str, resources: list[str] | None = None, reconcile: bool = False
) -> dict[str, Any]:
    """Sync one office of the offices file into ``ODAPI_SYNC_DB``; returns its summary (no patient data)."""
    config = _office(office)
    specs = sync_specs(resources or incremental_resources())

    async def run() -> OfficeProgress:
        with open_store(os.environ["ODAPI_SYNC_DB"]) as store:
            return await sync_office(config, store, specs, reconcile=reconcile, claim_wait=CLAIM_WAIT)

    progress = anyio.run(run)
    if progress.failures:
        # One line per failure (keys and passwords are never in them); the task fails, its result says why.
        raise RuntimeError(f"office {office}: " + "; ".join(progress.failures))
    return _summary(progress)


@app.task(name="odapi.sync_all")
def sync_all(resources: list[str] | None = None, reconcile: bool = False) -> str:
    """Queue one sync task per office of the file; returns the group's id."""
    names = [entry.name for entry in load_offices(os.environ["ODAPI_OFFICES"]).offices]
    result = group(sync_office_task.s(name, resources, reconcile) for name in names).apply_async()
    result.save()
    return str(result.id)
