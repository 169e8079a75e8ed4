"""Every store failure is one line and fails alone (issue 21, case 3).

A failure of the file as a whole (disk full, read-only, not a database, locked past the busy timeout) stops the
run with one line naming the path and the cause, exit 1, never an ExceptionGroup; the file stays valid and the
next run is exact. A failure of one office's writes is that office's error; the other offices go on.
"""

from __future__ import annotations

import contextlib
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest
from cli.clitools import assert_equal, odapi

from odapi_async.sync import OfficeConfig, StoreFileError, SyncStore, sync_offices, sync_specs

pytestmark = pytest.mark.integration

KEY = "k-errors"
RESOURCES = "patients,procedurelogs,appointments,commlogs"


def sync_args(emulator, db: Path, *extra: str) -> list[str]:
    return [
        "sync", "--db", str(db), "--endpoint", f"local={emulator.endpoints['local']}", "--mode", "local",
        "--developer-key", "dev-cli", "--customer-key", KEY, "--quiet", "--resources", RESOURCES, *extra,
    ]  # fmt: skip


def one_line(stderr: str) -> str:
    assert stderr.count("\n") == 1, stderr
    assert "ExceptionGroup" not in stderr and "Traceback" not in stderr, stderr
    return stderr.strip()


def valid(db: Path) -> None:
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    conn.close()


@contextlib.contextmanager
def tmpfs(where: Path, size: str) -> Iterator[Path]:
    """A small file system of its own (a real "disk full" / "read-only"); skipped where mounting is not allowed."""
    where.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)], capture_output=True, text=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root with CAP_SYS_ADMIN): {mounted.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def remount(where: Path, options: str) -> None:
    subprocess.run(["mount", "-o", f"remount,{options}", str(where)], check=True)


@pytest.mark.slow("two odapi syncs and a comparison with the office")
def test_disk_full_is_one_line_the_file_stays_valid_and_the_next_run_is_exact(
    slow_emulator, tmp_path
) -> None:
    with tmpfs(tmp_path / "disk", "400k") as disk:
        db = disk / "x.sqlite"
        run = odapi(*sync_args(slow_emulator, db))
        assert run.returncode == 1
        assert one_line(run.stderr) == f"error: {db}: disk full (SQLite: database or disk is full)"
        valid(db)
        remount(disk, "size=20m")  # room again: the next run goes on from what was committed
        run = odapi(*sync_args(slow_emulator, db))
        assert run.returncode == 0, run.stderr
        assert_equal(slow_emulator, db, KEY, "default", RESOURCES.split(","))


@pytest.mark.slow("three odapi syncs and a comparison with the office")
def test_a_read_only_file_is_one_line(slow_emulator, tmp_path) -> None:
    with tmpfs(tmp_path / "disk", "20m") as disk:
        db = disk / "x.sqlite"
        assert odapi(*sync_args(slow_emulator, db, "--resources", "patients")).returncode == 0
        remount(disk, "ro")
        run = odapi(*sync_args(slow_emulator, db))
        assert run.returncode == 1
        assert one_line(run.stderr).startswith(
            f"error: {db}: read-only (on a read-only file system) (SQLite: "
        )
        remount(disk, "rw")
        valid(db)
        run = odapi(*sync_args(slow_emulator, db))
        assert run.returncode == 0, run.stderr
        assert_equal(slow_emulator, db, KEY, "default", RESOURCES.split(","))


def test_a_file_that_is_not_a_database_is_one_line_and_left_alone(slow_emulator, tmp_path) -> None:
    db = tmp_path / "notes.sqlite"
    db.write_bytes(b"not SQLite, some notes the user keeps\n" * 200)
    before = db.read_bytes()
    run = odapi(*sync_args(slow_emulator, db))
    assert run.returncode == 1
    assert one_line(run.stderr) == f"error: {db}: not a SQLite database (SQLite: file is not a database)"
    assert db.read_bytes() == before


@pytest.mark.slow("waits out SQLite's 10 s busy timeout, then syncs again")
def test_a_file_locked_past_the_busy_timeout_is_one_line(slow_emulator, tmp_path) -> None:
    db = tmp_path / "x.sqlite"
    assert odapi(*sync_args(slow_emulator, db, "--resources", "patients")).returncode == 0
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another program writing, for longer than SQLite's busy timeout (10 s)
    try:
        started = time.monotonic()
        run = odapi(*sync_args(slow_emulator, db), timeout=60)
        waited = time.monotonic() - started
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert run.returncode == 1
    assert one_line(run.stderr).startswith(
        f"error: {db}: locked by another process for more than 10 s (SQLite: database is locked)"
    )
    assert waited >= 10
    valid(db)
    run = odapi(*sync_args(slow_emulator, db))
    assert run.returncode == 0, run.stderr
    assert_equal(slow_emulator, db, KEY, "default", RESOURCES.split(","))


def offices(emulator, *names: str) -> list[OfficeConfig]:
    return [OfficeConfig(name, lambda: emulator.session(KEY)) for name in names]


def test_one_offices_refused_writes_fail_that_office_only(slow_emulator, tmp_path) -> None:
    db = tmp_path / "x.sqlite"
    specs = sync_specs(["patients", "commlogs"])
    with SyncStore(db) as store:
        anyio.run(lambda: sync_offices(offices(slow_emulator, "north"), store, specs))  # makes the tables
        with sqlite3.connect(db) as conn:  # a real refusal of SQLite's, for one office's rows
            conn.execute(
                "CREATE TRIGGER refuse BEFORE INSERT ON commlogs WHEN NEW.office = 'south' "
                "BEGIN SELECT RAISE(ABORT, 'south is archived'); END"
            )
        conn.close()
        done = anyio.run(lambda: sync_offices(offices(slow_emulator, "north", "south"), store, specs))
        north, south = done
        assert north.error is None and not north.failures
        assert south.error is not None
        assert "StoreWriteError: could not write commlogs of office south" in south.error
        assert "south is archived" in south.error
        assert store.count("commlogs", "north") > 0 and store.count("commlogs", "south") == 0


def test_a_store_that_cannot_grow_stops_every_office_with_one_error(slow_emulator, tmp_path) -> None:
    """From Python: the whole-file failure is raised alone (not an ExceptionGroup); the next run is exact.

    SQLite's ``max_page_count`` makes the file full without a small file system (runs everywhere).
    """
    db = tmp_path / "x.sqlite"
    specs = sync_specs(RESOURCES.split(","))

    class Capped(SyncStore):
        def __init__(self, path: Path) -> None:
            super().__init__(path)
            self._conn.execute("PRAGMA max_page_count = 60")

    with Capped(db) as store, pytest.raises(StoreFileError) as caught:
        anyio.run(lambda: sync_offices(offices(slow_emulator, "north", "south"), store, specs))
    assert str(caught.value) == f"{db}: disk full (SQLite: database or disk is full)"
    valid(db)
    with SyncStore(db) as store:
        done = anyio.run(lambda: sync_offices(offices(slow_emulator, "north", "south"), store, specs))
    assert not any(o.failures for o in done)
    for name in ("north", "south"):
        assert_equal(slow_emulator, db, KEY, name, RESOURCES.split(","))
