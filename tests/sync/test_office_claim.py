"""One run per office of a store: the claim, its wait and skip, its expiry, and a run that lost it."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sqlite3
import subprocess
import sys
import time

import anyio
import pytest
from cli.clitools import _env, assert_equal, odapi

from odapi_async import resources as models
from odapi_async.sync import SYNC, ClaimLost, SyncStore, TableLayout, _engine
from odapi_async.sync._writer import store_writer

PATIENTS = TableLayout(SYNC["patients"], models.Patient)


def sync_args(emulator, db, *extra: str) -> list[str]:
    return [
        "sync", "--db", str(db), "--endpoint", f"local={emulator.endpoints['local']}", "--mode", "local",
        "--developer-key", "dev-cli", "--customer-key", "k-skip", "--json", "--resources", "patients", *extra,
    ]  # fmt: skip


def dead_pid() -> int:
    """The pid of a process that has exited and been reaped."""
    proc = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    return int(proc.stdout)


def test_two_runs_never_judge_each_others_listing(tmp_path) -> None:
    with SyncStore(tmp_path / "a.sqlite") as store:
        store.prepare(PATIENTS)
        assert store.claim("north", "run-a", ttl=0.0) is None  # expires at once: the next claim takes over
        store.write_page(
            PATIENTS, "north", [models.Patient(PatNum=1), models.Patient(PatNum=2)], listing=True, run="run-a"
        )
        assert store.claim("north", "run-b", ttl=30) is None
        store.write_page(PATIENTS, "north", [models.Patient(PatNum=3)], listing=True, run="run-b")
        with pytest.raises(
            ClaimLost
        ):  # a stalled run that lost its claim commits nothing, its listing judges nothing
            store.finish(PATIENTS, "north", watermark=None, listing=True, listed_rows=2, run="run-a")
        with pytest.raises(ClaimLost):
            store.write_page(PATIENTS, "north", [models.Patient(PatNum=4)], listing=False, run="run-a")
        assert not store.renew("north", "run-a", ttl=30)
        assert store.count("patients", "north") == 3
        # run-b judges by its own listing only: rows 1 and 2 (not listed by run-b) go, nothing of run-a's keys counts.
        assert store.finish(PATIENTS, "north", watermark=None, listing=True, listed_rows=1, run="run-b") == 2
        store.release("north", "run-b")
        with sqlite3.connect(store.path) as conn:
            assert conn.execute("SELECT count(*) FROM odapi_sync_listed").fetchone()[0] == 0
            assert conn.execute("SELECT count(*) FROM odapi_sync_run").fetchone()[0] == 0
        conn.close()


def test_a_live_claim_is_refused_an_expired_or_dead_one_is_taken(tmp_path) -> None:
    with SyncStore(tmp_path / "a.sqlite") as first, SyncStore(tmp_path / "a.sqlite") as second:
        assert first.claim("north", "run-a", ttl=30) is None
        held = second.claim("north", "run-b", ttl=30)
        assert held is not None and held.holder == f"{socket.gethostname()}:{os.getpid()}"
        assert second.claim("south", "run-b", ttl=30) is None  # per office
        assert first.renew("north", "run-a", ttl=30)
        first.release("north", "run-a")
        assert second.claim("north", "run-b", ttl=30) is None
        with sqlite3.connect(first.path) as conn:  # a claim whose process died (SIGKILL) frees at once
            conn.execute(
                "UPDATE odapi_sync_run SET holder = ?, expires = ? WHERE office = 'north'",
                (f"{socket.gethostname()}:{dead_pid()}", time.time() + 3600),
            )
        conn.close()
        assert first.claim("north", "run-c", ttl=30) is None
        first.fence("north", 7)  # a fleet's lease decides: the fenced worker takes the office over
        assert second.claim("north", "run-d", ttl=30) is not None
        assert first.claim("north", "run-e", ttl=30) is None


async def test_a_long_run_keeps_its_claim_by_renewing(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(_engine, "CLAIM_TTL", 0.3)
    renewed = 0
    enough = anyio.Event()
    loop = asyncio.get_running_loop()

    class Counting(SyncStore):
        def renew(self, office: str, run: str, *, ttl: float) -> bool:
            nonlocal renewed
            held = super().renew(office, run, ttl=ttl)
            renewed += 1
            if renewed >= 4:  # past the TTL more than once
                loop.call_soon_threadsafe(enough.set)  # renew runs in the store's own thread
            return held

    with Counting(tmp_path / "a.sqlite") as store, SyncStore(tmp_path / "a.sqlite") as other:
        assert store.claim("north", "run-a", ttl=0.3) is None

        async def body() -> None:
            with anyio.fail_after(10):
                await enough.wait()
            assert other.claim("north", "run-b", ttl=30) is not None

        with store_writer(store) as writer:
            await _engine._holding_claim(writer, store, "north", "run-a", body)


async def test_a_run_whose_claim_was_taken_stops_with_claim_lost(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(_engine, "CLAIM_TTL", 0.3)
    with SyncStore(tmp_path / "a.sqlite") as store, SyncStore(tmp_path / "a.sqlite") as other:
        store.fence("north", 1)
        assert store.claim("north", "run-a", ttl=0.3) is None
        other.fence("north", 2)  # a newer fleet holder takes it over
        assert other.claim("north", "run-b", ttl=30) is None
        with store_writer(store) as writer, pytest.raises(ClaimLost), anyio.fail_after(10):
            await _engine._holding_claim(writer, store, "north", "run-a", anyio.sleep_forever)


def test_sync_skips_an_office_another_run_holds_past_the_wait(slow_emulator, tmp_path) -> None:
    db = tmp_path / "x.sqlite"
    with SyncStore(db) as holder:  # this test process is the live run holding the office
        assert holder.claim("default", "someone", ttl=60) is None
        started = time.monotonic()
        run = odapi(*sync_args(slow_emulator, db, "--wait", "1"))
        waited = time.monotonic() - started
        assert run.returncode == 0, run.stderr
        office = json.loads(run.stdout)["offices"][0]
        assert office["ok"] and office["rows"] == 0 and office["requests"] == 0
        assert "another run" in office["skipped"] and "waited 1 s" in office["skipped"]
        assert run.stderr.count("\n") == 1 and run.stderr.startswith(
            "note: office default skipped: another run ("
        )
        assert waited >= 1.0
        # Released: the next run is not held back, and syncs.
        holder.release("default", "someone")
    run = odapi(*sync_args(slow_emulator, db, "--wait", "0"))
    assert run.returncode == 0 and run.stderr == "", run.stderr
    assert "skipped" not in json.loads(run.stdout)["offices"][0]
    assert_equal(slow_emulator, db, "k-skip", "default", ["patients"])


def test_a_killed_runs_claim_does_not_hold_the_next_run(slow_emulator, tmp_path) -> None:
    db = tmp_path / "x.sqlite"
    with SyncStore(db) as store:
        assert store.claim("default", "killed", ttl=3600) is None
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE odapi_sync_run SET holder = ?", (f"{socket.gethostname()}:{dead_pid()}",))
    conn.close()
    run = odapi(*sync_args(slow_emulator, db, "--wait", "0"), env=_env())
    assert run.returncode == 0 and run.stderr == "", run.stderr
    assert_equal(slow_emulator, db, "k-skip", "default", ["patients"])
