"""``odapi demo``: the emulator and a sync of two offices, in one command, on a fresh machine.

It starts the emulator in this process (a synthetic practice), then syncs two offices of it into SQLite with live
progress: one with a ``full`` key over the Local listener, one with a ``read_all`` key over the Remote listener
(throttled, with the Remote intervals scaled down so that the demo ends in seconds; it says so).
"""

from __future__ import annotations

from pathlib import Path

import anyio
import click
from rich.console import Console

from odapi_async import OpenDental
from odapi_async._util.optional import MissingExtra, require_extra
from odapi_async.cli._common import CliFailure, usage_error
from odapi_async.cli.sync import run_sync
from odapi_async.sync import OfficeConfig, incremental_resources

DEVELOPER_KEY = "demo-developer"
KEYS = {"demo-northside": "full", "demo-riverside": "read_all"}
#: The real intervals are 1 s (full) and 5 s (read_all); the demo runs them 250 times faster.
SPEED_UP = 250
SYNC_DOCS = "https://github.com/odapi-async/odapi-async/blob/main/docs/sync.md"
INTERVALS = {"full": 1.0 / SPEED_UP, "read_all": 5.0 / SPEED_UP, "enterprise": 0.5 / SPEED_UP}


def _offices(endpoints: dict[str, str]) -> list[OfficeConfig]:
    def northside() -> OpenDental:
        return OpenDental(
            DEVELOPER_KEY,
            "demo-northside",
            modes=("local", "service", "remote"),
            endpoints=endpoints,
            intervals=INTERVALS,
        )

    def riverside() -> OpenDental:
        # This office's Service listener is down: the cascade falls back to Remote.
        return OpenDental(
            DEVELOPER_KEY,
            "demo-riverside",
            modes=("service", "remote"),
            endpoints=endpoints,
            tier="read_all",
            intervals=INTERVALS,
        )

    return [OfficeConfig("northside", northside), OfficeConfig("riverside", riverside)]


async def _demo(db: Path, patients: int, seed: int, quiet: bool, console: Console) -> bool:
    try:
        require_extra("emulator", "the demo")
    except MissingExtra as exc:
        raise usage_error(str(exc)) from None
    from odapi_async.emulator import Emulator

    emu = Emulator(
        seed=seed, patients=patients, developer_key=DEVELOPER_KEY, customer_keys=KEYS, intervals=INTERVALS
    )
    say = console.print if not quiet else (lambda *a, **k: None)
    say(f"[bold]odapi demo[/bold]: starting the emulator with a synthetic practice of {patients:,} patients…")
    # Its own thread and event loop: the server does not share the sync's loop.
    with emu.in_thread():
        emu.stop_listener("service")
        say(
            "Syncing two offices into SQLite: [bold]northside[/bold] (full key, Local listener) and "
            "[bold]riverside[/bold] (read_all key, cascade Service → Remote).\n"
            "riverside's Service listener is stopped on purpose: the warning [bold]'service mode failed "
            "(ConnectError ...); now using remote'[/bold] below is the failover this demo shows, not a fault.\n"
            f"The Remote throttle intervals are scaled down {SPEED_UP}× for the demo "
            f"(read_all {INTERVALS['read_all'] * 1000:.0f} ms instead of 5 s, full {INTERVALS['full'] * 1000:.0f} ms "
            "instead of 1 s)."
        )
        done = await run_sync(
            _offices(emu.endpoints),
            db,
            incremental_resources(),
            reconcile=False,
            console=console,
            quiet=quiet,
            as_json=False,
        )
        stats = emu.stats()
    violations = stats["listeners"]["remote"]["violations"]
    say(f"Throttle violations counted by the emulator: {violations}")
    say(f"The rows are in [bold]{db}[/bold] (one table per resource, an 'office' column).")
    for line in next_steps(db):
        say(line, markup=False, highlight=False)
    return not any(o.failures for o in done)


def next_steps(db: Path) -> list[str]:
    """What to do after the demo: look at the rows, then sync a real office the way a deployment does."""
    return [
        "Next:",
        f"  look at the rows:  sqlite3 {db.name} 'SELECT office, count(*) FROM appointments GROUP BY office'",
        "  sync a real office: write offices.toml (one [offices.NAME] table per office)",
        "",
        "      [offices.main]",
        '      customer_key_env = "MAIN_CUSTOMER_KEY"   # the office\'s customer key, from the environment',
        '      tier = "auto"',
        '      modes = ["local", "service", "remote"]   # the cascade, in order',
        "",
        "    then: export ODAPI_DEVELOPER_KEY=... MAIN_CUSTOMER_KEY=...",
        "          odapi sync --offices offices.toml --db offices.sqlite   # run it again: only what changed",
        f"    (the offices file, schedules and fleets: {SYNC_DOCS})",
    ]


@click.command()
@click.option(
    "--db",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("odapi-demo.sqlite"),
    show_default=True,
)
@click.option("--patients", type=click.IntRange(min=10, max=100_000), default=2000, show_default=True)
@click.option("--seed", type=int, default=1, show_default=True)
@click.option("--fresh/--keep", default=True, show_default=True, help="Start from an empty database file.")
@click.option("--quiet", "-q", is_flag=True)
def demo(db: Path, patients: int, seed: int, fresh: bool, quiet: bool) -> int:
    """Start the emulator here and sync two of its offices into SQLite, with progress and a summary."""
    db = db.absolute()
    if fresh:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{db}{suffix}").unlink(missing_ok=True)
    console = Console()
    ok = anyio.run(_demo, db, patients, seed, quiet, console)
    if not ok:
        raise CliFailure("the demo sync failed (see above)", exit_code=1)
    return 0
