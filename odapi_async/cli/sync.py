"""``odapi sync``: incremental, resumable sync of one or many offices into SQLite or PostgreSQL."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

import anyio
import anyio.to_thread
import click
from rich.console import Console

from odapi_async import ConfigurationError
from odapi_async._hub import default_hub
from odapi_async._throttle.redis import RedisThrottle
from odapi_async.cli._common import CliFailure, Connection, connection_options, office_from_entry, usage_error
from odapi_async.cli._report import LiveProgress, interrupted_lines, print_summary
from odapi_async.sync import (
    OfficeConfig,
    OfficeProgress,
    OfficesFileError,
    StoreFileError,
    SyncSink,
    incremental_resources,
    is_postgres_url,
    load_offices,
    open_store,
    sync_offices,
    sync_specs,
    syncable_resources,
)
from odapi_async.sync._engine import CLAIM_WAIT
from odapi_async.sync._fleet import FleetLeases, sync_fleet
from odapi_async.sync._metrics import serve_metrics, watch_sync
from odapi_async.sync._offices import exposed_keys_warning
from odapi_async.sync._open import prepare_tables


def resource_names(text: str | None) -> list[str]:
    """``--resources``: a comma-separated list, ``all`` (every syncable resource) or the default."""
    if not text:
        return incremental_resources()
    if text.strip() == "all":
        return syncable_resources()
    return [name.strip() for name in text.split(",") if name.strip()]


def offices_for(connection: Connection, offices_file: Path | None) -> list[OfficeConfig]:
    if offices_file is None:
        return [connection.office("default")]
    try:
        loaded = load_offices(offices_file)
    except OfficesFileError as exc:
        raise usage_error(str(exc)) from None
    warning = exposed_keys_warning(offices_file, loaded)
    if warning:
        click.echo(warning, err=True)
    return [office_from_entry(entry, loaded.developer_key, connection) for entry in loaded.offices]


async def run_sync(
    offices: Sequence[OfficeConfig],
    db: str | Path,
    resources: Sequence[str],
    *,
    reconcile: bool,
    console: Console,
    quiet: bool,
    as_json: bool,
    fleet: FleetLeases | None = None,
    round_name: str | None = None,
    store: SyncSink | None = None,
    claim_wait: float = CLAIM_WAIT,
) -> list[OfficeProgress]:
    """Sync with live progress, then print the summary. Returns each office's outcome."""
    try:
        specs = sync_specs(resources)
    except ValueError as exc:
        raise usage_error(f"--resources: {exc}") from None
    tracked = {o.name: OfficeProgress(o.name) for o in offices}
    failure: StoreFileError | None = None  # raised after the task group, alone (not in an ExceptionGroup)
    with contextlib.nullcontext(store) if store is not None else open_store(db) as store:
        await anyio.to_thread.run_sync(prepare_tables, store, specs)
        stop = anyio.Event()
        display = LiveProgress(console, list(tracked.values()), quiet=quiet or as_json)
        watch_sync(tracked, store, specs, fleet)  # --metrics reads the run from here
        async with anyio.create_task_group() as tg:
            tg.start_soon(display.run, stop)
            try:
                if fleet is None:
                    done = await sync_offices(
                        offices, store, specs, reconcile=reconcile, progress=tracked, claim_wait=claim_wait
                    )
                else:
                    async with fleet:
                        done = await sync_fleet(
                            offices,
                            store,
                            specs,
                            fleet,
                            reconcile=reconcile,
                            progress=tracked,
                            round_name=round_name,
                        )
            except (KeyboardInterrupt, anyio.get_cancelled_exc_class()):  # Ctrl-C
                err = Console(stderr=True, highlight=False, soft_wrap=True)
                for line in interrupted_lines(list(tracked.values()), [s.resource for s in specs]):
                    err.print(line, markup=False)
                raise
            except StoreFileError as exc:
                failure = exc
            finally:
                stop.set()
    if failure is not None:
        raise failure
    if not quiet or as_json:
        print_summary(console, done, as_json=as_json)
    return done


@click.command()
@click.option(
    "--db",
    metavar="PATH|URL",
    default="odapi.sqlite",
    show_default=True,
    help="A SQLite file, or a PostgreSQL database as postgresql://USER@HOST:PORT/DBNAME (the password from "
    "PGPASSWORD or ~/.pgpass).",
)
@click.option(
    "--resources",
    metavar="A,B,...|all",
    help="Resources to sync. Default: every resource with an incremental list; 'all': every syncable one.",
)
@click.option(
    "--offices",
    "offices_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="TOML file of offices (see docs/sync.md); without it, one office from the key flags/environment.",
)
@click.option(
    "--reconcile", is_flag=True, help="List incremental resources whole too, removing deleted rows."
)
@click.option(
    "--wait",
    "claim_wait",
    type=click.FloatRange(0),
    default=CLAIM_WAIT,
    show_default=True,
    help="Seconds to wait for an office another run is syncing into the same --db; then skip it (see docs/sync.md).",
)
@click.option("--quiet", "-q", is_flag=True, help="No progress and no table; errors still go to stderr.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.option(
    "--redis",
    "redis_url",
    metavar="URL",
    help="Work as one of a fleet: offices are leased through this Redis, one worker each, and the throttle is "
    "shared (see docs/sync.md).",
)
@click.option("--redis-cluster", is_flag=True, help="With --redis: the URL is one node of a Redis Cluster.")
@click.option("--fleet-group", default="default", show_default=True, help="The fleet's name in Redis.")
@click.option(
    "--round",
    "round_name",
    metavar="NAME",
    help="With --redis: workers given the same round share one pass over the offices (e.g. the scheduled time). "
    "Default: join the open numbered round, or open the next.",
)
@click.option(
    "--lease-ttl",
    type=float,
    default=30.0,
    show_default=True,
    help="Seconds before a dead worker's office frees.",
)
@click.option(
    "--events",
    "events_listen",
    metavar="HOST:PORT",
    help="Also receive API Events on HOST:PORT and write their rows as they come; sweeps stay the safety net "
    "(runs until Ctrl-C or --for).",
)
@click.option("--events-url", metavar="URL", help="The URL the office posts to (default: http://HOST:PORT/).")
@click.option(
    "--polling-seconds", type=click.IntRange(1), default=60, show_default=True, help="With --events."
)
@click.option(
    "--sweep-every",
    type=click.FloatRange(1),
    default=3600.0,
    show_default=True,
    help="With --events: seconds.",
)
@click.option(
    "--for", "run_for", type=click.FloatRange(0), help="With --events: stop after this many seconds."
)
@click.option(
    "--metrics",
    "metrics_listen",
    metavar="HOST:PORT",
    help="Serve Prometheus metrics per office on http://HOST:PORT/metrics, and /healthz (docs/observability.md).",
)
@connection_options
def sync(
    db: str,
    resources: str | None,
    offices_file: Path | None,
    reconcile: bool,
    claim_wait: float,
    quiet: bool,
    as_json: bool,
    redis_url: str | None,
    redis_cluster: bool,
    fleet_group: str,
    round_name: str | None,
    lease_ttl: float,
    events_listen: str | None,
    events_url: str | None,
    polling_seconds: int,
    sweep_every: float,
    run_for: float | None,
    metrics_listen: str | None,
    connection: Connection,
) -> int:
    """Copy offices' data into SQLite or PostgreSQL, fetching only what changed since the last run."""
    target: str | Path = db if is_postgres_url(db) else Path(db)
    if isinstance(target, Path) and target.is_dir():
        raise usage_error(f"--db: {target} is a directory; give a SQLite file or a postgresql:// URL")
    fleet = None
    if redis_url:
        try:
            fleet = FleetLeases(redis_url, group=fleet_group, ttl=lease_ttl, cluster=redis_cluster)
        except ValueError as exc:
            raise usage_error(f"--fleet-group/--lease-ttl: {exc}") from None
        # Every session of this process shares its keys' throttle with the other workers.
        default_hub.throttle = RedisThrottle(redis_url, cluster=redis_cluster)
    elif round_name is not None:
        raise usage_error("--round needs --redis")
    elif redis_cluster:
        raise usage_error("--redis-cluster needs --redis")
    if round_name is not None and (not round_name or any(c in round_name for c in ":{} ")):
        raise usage_error("--round: a name without spaces, ':', '{' or '}'")
    offices = offices_for(connection, offices_file)
    for config in offices:  # settings errors (no key, a bad tier) are usage errors, found before any request
        try:
            config.session()
        except ConfigurationError as exc:
            raise usage_error(f"office {config.name}: {exc}") from None
    console = Console()
    if metrics_listen is not None:
        try:
            url = serve_metrics(metrics_listen, [o.name for o in offices])
        except (ValueError, ImportError) as exc:
            raise usage_error(f"--metrics: {exc}") from None
        Console(stderr=True, highlight=False).print(f"metrics on {url}", markup=False)
    if events_listen is not None:
        if redis_url:
            raise usage_error("--events and --redis: run the fleet's sweeps and one event receiver apart")
        host, _, port = events_listen.rpartition(":")
        if not host or not port.isdigit():
            raise usage_error("--events: HOST:PORT, such as 0.0.0.0:8090")
        done = _store_failure_is_one_line(
            lambda: run_following(
                offices,
                target,
                resource_names(resources),
                host=host,
                port=int(port),
                url=events_url or f"http://{host}:{port}/",
                polling_seconds=polling_seconds,
                sweep_every=sweep_every,
                run_for=run_for,
                reconcile=reconcile,
                console=console,
                quiet=quiet,
                as_json=as_json,
            )
        )
        return _exit_code(done)
    done = _store_failure_is_one_line(
        lambda: run_sync(
            offices,
            target,
            resource_names(resources),
            reconcile=reconcile,
            console=console,
            quiet=quiet,
            as_json=as_json,
            fleet=fleet,
            round_name=round_name,
            claim_wait=claim_wait,
        )
    )
    return _exit_code(done)


def _store_failure_is_one_line(run: Callable[[], Awaitable[list[OfficeProgress]]]) -> list[OfficeProgress]:
    """Run the sync; a failure of the file as a whole (disk full, read-only, ...) is one line naming it, exit 1."""
    try:
        return anyio.run(run)
    except StoreFileError as exc:
        raise CliFailure(str(exc), exit_code=1) from None


def _exit_code(done: list[OfficeProgress]) -> int:
    failed = [o for o in done if o.failures]
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    for office in done:
        if office.skipped:  # not a failure: the other run syncs it
            err.print(f"note: office {office.name} skipped: {office.skipped}", markup=False)
    for office in failed:
        for failure in office.failures:
            err.print(f"error: office {office.name}: {failure}", markup=False)
    if failed:
        raise CliFailure(f"{len(failed)} of {len(done)} office(s) failed", exit_code=1)
    return 0


async def run_following(
    offices: Sequence[OfficeConfig],
    db: str | Path,
    resources: Sequence[str],
    *,
    host: str,
    port: int,
    url: str,
    polling_seconds: int,
    sweep_every: float,
    run_for: float | None,
    reconcile: bool,
    console: Console,
    quiet: bool,
    as_json: bool,
) -> list[OfficeProgress]:
    """``--events``: a receiver writing event rows, and a sweep every ``sweep_every`` seconds (the safety net)."""
    import uvicorn

    from odapi_async.sync._follow import follow_subscriptions, make_event_receiver, watched_tables

    class Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self):  # type: ignore[no-untyped-def]
            yield  # Ctrl-C ends the whole command (anyio cancels), not the server alone

    ends = time.monotonic() + run_for if run_for is not None else float("inf")
    failure: StoreFileError | None = None
    with open_store(db) as store:
        receiver = make_event_receiver(offices, store, resources)
        server = Server(
            uvicorn.Config(receiver.asgi(), host=host, port=port, log_level="warning", lifespan="on")
        )
        async with anyio.create_task_group() as tg:
            tg.start_soon(server.serve)
            with anyio.fail_after(30):
                while not server.started:  # noqa: ASYNC110 (uvicorn has no event for it)
                    await anyio.sleep(0.01)
            try:
                await follow_subscriptions(
                    offices, url, watched_tables(resources), polling_seconds=polling_seconds
                )
                if not quiet:
                    console.print(
                        f"receiving API Events on {url} (every {polling_seconds} s from each office)"
                    )
                while True:
                    done = await run_sync(
                        offices, db, resources, reconcile=reconcile, console=console, quiet=quiet,
                        as_json=as_json, store=store,
                    )  # fmt: skip
                    left = ends - time.monotonic()
                    if left <= 0:
                        break
                    await anyio.sleep(min(sweep_every, left))
                    if time.monotonic() >= ends:
                        break
            except StoreFileError as exc:
                failure = exc
            finally:
                server.should_exit = True
    if failure is not None:
        raise failure
    return done
