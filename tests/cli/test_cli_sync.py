"""``odapi sync`` as a user runs it: a subprocess against an emulator in its own process."""

from __future__ import annotations

import asyncio
import json
import signal
import sqlite3
import time
from pathlib import Path

import pytest
from clitools import assert_equal, local_rows, odapi, odapi_popen

pytestmark = pytest.mark.integration

INCREMENTAL = "patients,procedurelogs,commlogs"
RESOURCES = INCREMENTAL + ",fees"


def sync_args(emulator, key: str, db: Path, *extra: str) -> list[str]:
    return [
        "sync", "--db", str(db), "--endpoint", f"local={emulator.endpoints['local']}",
        "--developer-key", "dev-cli", "--customer-key", key, "--json", *extra,
    ]  # fmt: skip


@pytest.mark.slow("two syncs and a reconcile in subprocesses (11 s with its setup under load)")
def test_second_sync_fetches_only_the_changes_and_reconcile_removes_deletions(emulator, tmp_path) -> None:
    key, db = "k-changes", tmp_path / "office.sqlite"
    first = odapi(*sync_args(emulator, key, db, "--resources", RESOURCES))
    assert first.returncode == 0, first.stderr
    first_requests = emulator.requests(key)
    assert_equal(emulator, db, key, "default", RESOURCES.split(","))

    async def change() -> dict[str, int]:
        async with emulator.session(key) as od:
            patient = (await od.patients.list(Limit=1).first_page())[0]
            await od.patients.update(patient.PatNum, LName="Changed")
            new_log = await od.commlogs.create(
                PatNum=patient.PatNum, Note="called", CommDateTime="2024-01-02 10:00:00"
            )
            procs = [p async for p in od.procedurelogs.list(ProcStatus="TP")]
            await od.procedurelogs.delete(procs[0].ProcNum)
            fees = await od.fees.list(Limit=1).first_page()
            await od.fees.delete(fees[0].FeeNum)
            return {"patient": patient.PatNum, "commlog": new_log.CommlogNum, "proc": procs[0].ProcNum}

    changed = asyncio.run(change())
    before = emulator.requests(key)
    second = odapi(*sync_args(emulator, key, db, "--resources", INCREMENTAL))
    assert second.returncode == 0, second.stderr
    report = {r["resource"]: r for r in json.loads(second.stdout)["offices"][0]["resources"]}
    # Only the changed rows came back, one request per resource (the office clock came with the patients page).
    assert report["patients"]["how"] == "incremental" and report["patients"]["rows"] == 1
    assert report["commlogs"]["rows"] == 1
    assert report["procedurelogs"]["rows"] == 0
    assert emulator.requests(key) - before == 3 < first_requests
    assert_equal(emulator, db, key, "default", ["patients", "commlogs"])
    # A deleted procedure is invisible to DateTStamp: still here until a reconcile pass.
    assert changed["proc"] in {row[1] for row in local_rows(db, "procedurelogs", "default")}

    third = odapi(*sync_args(emulator, key, db, "--resources", RESOURCES, "--reconcile"))
    assert third.returncode == 0, third.stderr
    report = {r["resource"]: r for r in json.loads(third.stdout)["offices"][0]["resources"]}
    assert report["procedurelogs"]["how"] == "reconcile" and report["procedurelogs"]["removed"] == 1
    assert (
        report["fees"]["how"] == "whole" and report["fees"]["removed"] == 1
    )  # no filter: listed whole each run
    assert_equal(emulator, db, key, "default", RESOURCES.split(","))


KILLS = [(signal.SIGINT, 2), (signal.SIGKILL, 8), (signal.SIGKILL, 20)]


@pytest.mark.slow("three syncs in subprocesses over the throttled Remote listener (17 s under load)")
@pytest.mark.parametrize("kills", [KILLS], ids=["Ctrl-C at 2, SIGKILL at 8 and 20 requests"])
def test_sync_interrupted_then_rerun_ends_equal(emulator, tmp_path, kills) -> None:
    """Each run is stopped once the emulator has served a few more of its requests; the last one finishes."""
    key, db = "k-kill", tmp_path / "killed.sqlite"
    resources = "appointments,patients,procedurelogs,commlogs,fees"
    # Over the throttled Remote listener (100 rows a page), so that a run spans many requests.
    args = [
        "sync", "--db", str(db), "--endpoint", f"remote={emulator.endpoints['remote']}", "--tier", "full",
        "--interval", "full=0.01",
        "--developer-key", "dev-cli", "--customer-key", key, "--quiet", "--resources", resources,
    ]  # fmt: skip
    for sig, count in kills:
        start = emulator.requests(key, "remote")
        proc = odapi_popen(*args)
        deadline = time.monotonic() + 60
        while emulator.requests(key, "remote") - start < count:
            assert proc.poll() is None, (
                f"the sync ended before {count} requests: {proc.stderr.read() if proc.stderr else ''}"
            )
            assert time.monotonic() < deadline, "no progress"
            time.sleep(0.005)
        proc.send_signal(sig)
        _, stderr = proc.communicate(timeout=30)
        if sig == signal.SIGKILL:
            assert proc.returncode == -signal.SIGKILL
        else:  # Ctrl-C: the page being written is committed or rolled back, what was committed, then exit 130
            assert proc.returncode == 130, stderr
            assert stderr.strip().splitlines()[-1] == "interrupted"
            assert "Run the same command again to resume" in stderr
        with sqlite3.connect(db) as conn:
            finished = conn.execute("SELECT count(*) FROM odapi_sync_state").fetchone()[0]
        conn.close()
        assert finished < len(resources.split(",")), "the run was not cut short"
    done = odapi(*args)
    assert done.returncode == 0, done.stderr
    assert_equal(emulator, db, key, "default", resources.split(","))


def test_three_offices_one_bad_key(emulator, tmp_path) -> None:
    db, offices = tmp_path / "many.sqlite", tmp_path / "offices.toml"
    offices.write_text(
        f"""
developer_key_env = "TEST_DEV_KEY"

[defaults]
endpoints = {{ local = "{emulator.endpoints["local"]}" }}
modes = ["local"]

[offices.alpha]
customer_key_env = "ALPHA_KEY"

[offices.beta]
customer_key = "k-b"
tier = "read_all"

[offices.broken]
customer_key = "not-a-key-s3cr3t"
""",
        encoding="utf-8",
    )
    run = odapi(
        "sync", "--db", str(db), "--offices", str(offices), "--resources", "patients,providers", "--json",
        env={"TEST_DEV_KEY": "dev-cli", "ALPHA_KEY": "k-a"},
    )  # fmt: skip
    assert run.returncode == 1
    summary = json.loads(run.stdout)
    outcome = {o["office"]: o for o in summary["offices"]}
    assert outcome["alpha"]["ok"] and outcome["beta"]["ok"]
    assert not outcome["broken"]["ok"] and "Unauthorized" in outcome["broken"]["error"]
    assert "office broken: Unauthorized" in run.stderr
    assert "Traceback" not in run.stderr and "s3cr3t" not in run.stderr + run.stdout
    assert_equal(emulator, db, "k-a", "alpha", ["patients", "providers"])
    assert_equal(emulator, db, "k-b", "beta", ["patients", "providers"])
    assert local_rows(db, "patients", "broken") == set()


def test_a_bad_offices_file_names_the_line_and_the_field(tmp_path) -> None:
    offices = tmp_path / "offices.toml"
    offices.write_text('[offices.alpha]\ncustomer_key = "x"\nmodes = ["local", "cloud"]\n', encoding="utf-8")
    run = odapi("sync", "--db", str(tmp_path / "x.sqlite"), "--offices", str(offices))
    assert run.returncode == 2
    assert run.stderr.strip().splitlines() == [
        f"error: {offices}:3: offices.alpha.modes: must be a list of distinct modes from local, service, remote; "
        "got ['local', 'cloud']"
    ]
