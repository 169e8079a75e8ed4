"""``odapi sync``: incremental, resumable sync of one or many offices into SQLite."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import anyio
import click
from rich.console import Console

from .. import ConfigurationError
from .._hub import default_hub
from .._redis_throttle import RedisThrottle
from ..sync import (
    OfficeConfig,
    OfficeProgress,
    OfficesFileError,
    SyncStore,
    incremental_resources,
    load_offices,
    sync_offices,
    sync_specs,
    syncable_resources,
)
from ..sync._fleet import FleetLeases, sync_fleet
from ._common import CliFailure, Connection, connection_options, office_from_entry, usage_error
from ._report import LiveProgress, print_summary


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
    return [office_from_entry(entry, loaded.developer_key, connection) for entry in loaded.offices]


async def run_sync(
    offices: Sequence[OfficeConfig],
    db: Path,
    resources: Sequence[str],
    *,
    reconcile: bool,
    console: Console,
    quiet: bool,
    as_json: bool,
    fleet: FleetLeases | None = None,
    round_name: str | None = None,
) -> list[OfficeProgress]:
    """Sync with live progress, then print the summary. Returns each office's outcome."""
    try:
        specs = sync_specs(resources)
    except ValueError as exc:
        raise usage_error(f"--resources: {exc}") from None
    tracked = {o.name: OfficeProgress(o.name) for o in offices}
    with SyncStore(db) as store:
        stop = anyio.Event()
        display = LiveProgress(console, list(tracked.values()), quiet=quiet or as_json)
        async with anyio.create_task_group() as tg:
            tg.start_soon(display.run, stop)
            try:
                if fleet is None:
                    done = await sync_offices(offices, store, specs, reconcile=reconcile, progress=tracked)
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
            finally:
                stop.set()
    if not quiet or as_json:
        print_summary(console, done, as_json=as_json)
    return done


@click.command()
@click.option(
    "--db", type=click.Path(dir_okay=False, path_type=Path), default=Path("odapi.sqlite"), show_default=True
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
@click.option("--quiet", "-q", is_flag=True, help="No progress and no table; errors still go to stderr.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.option(
    "--redis",
    "redis_url",
    metavar="URL",
    help="Work as one of a fleet: offices are leased through this Redis, one worker each, and the throttle is "
    "shared (see docs/sync.md).",
)
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
@connection_options
def sync(
    db: Path,
    resources: str | None,
    offices_file: Path | None,
    reconcile: bool,
    quiet: bool,
    as_json: bool,
    redis_url: str | None,
    fleet_group: str,
    round_name: str | None,
    lease_ttl: float,
    connection: Connection,
) -> int:
    """Copy offices' data into SQLite, fetching only what changed since the last run."""
    fleet = None
    if redis_url:
        try:
            fleet = FleetLeases(redis_url, group=fleet_group, ttl=lease_ttl)
        except ValueError as exc:
            raise usage_error(f"--fleet-group/--lease-ttl: {exc}") from None
        # Every session of this process shares its keys' throttle with the other workers.
        default_hub.throttle = RedisThrottle(redis_url)
    elif round_name is not None:
        raise usage_error("--round needs --redis")
    if round_name is not None and (not round_name or any(c in round_name for c in ":{} ")):
        raise usage_error("--round: a name without spaces, ':', '{' or '}'")
    offices = offices_for(connection, offices_file)
    for config in offices:  # settings errors (no key, a bad tier) are usage errors, found before any request
        try:
            config.session()
        except ConfigurationError as exc:
            raise usage_error(f"office {config.name}: {exc}") from None
    console = Console()
    done = anyio.run(
        lambda: run_sync(
            offices,
            db,
            resource_names(resources),
            reconcile=reconcile,
            console=console,
            quiet=quiet,
            as_json=as_json,
            fleet=fleet,
            round_name=round_name,
        )
    )
    failed = [o for o in done if o.failures]
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    for office in failed:
        for failure in office.failures:
            err.print(f"error: office {office.name}: {failure}", markup=False)
    if failed:
        raise CliFailure(f"{len(failed)} of {len(done)} office(s) failed", exit_code=1)
    return 0
