"""``odapi sync --db postgresql://...``: the same rows as a sync into SQLite, in typed columns."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from cli.clitools import local_rows, odapi
from pg_support import column_types, pg_rows

pytestmark = pytest.mark.integration

RESOURCES = "patients,appointments,procedurelogs,commlogs,fees"


def sync_args(emulator, key: str, db: str | Path, *extra: str) -> list[str]:
    return [
        "sync", "--db", str(db), "--endpoint", f"local={emulator.endpoints['local']}",
        "--developer-key", "dev-cli", "--customer-key", key, "--json", "--resources", RESOURCES, *extra,
    ]  # fmt: skip


def assert_same(cluster, database: str, sqlite: Path, office: str = "default") -> None:
    for resource in RESOURCES.split(","):
        want = local_rows(sqlite, resource, office)
        have = pg_rows(cluster, database, resource, office)
        assert want, f"{resource}: SQLite holds no rows; the comparison would prove nothing"
        assert have == want, f"{resource}: {len(have - want)} extra or different, {len(want - have)} missing"


@pytest.mark.slow(
    "four syncs of five resources, and the cluster's initdb when it runs first (8 to 11 s under load)"
)
def test_postgres_holds_what_sqlite_holds_in_typed_columns_and_follows_a_change(
    emulator, pg_cluster, pg_db, tmp_path
) -> None:
    url, sqlite = pg_cluster.url(pg_db), tmp_path / "same.sqlite"
    for db in (url, sqlite):
        run = odapi(*sync_args(emulator, "k-pg", db))
        assert run.returncode == 0, run.stderr
    assert_same(pg_cluster, pg_db, sqlite)
    appointments = column_types(pg_cluster, pg_db, "appointments")
    assert appointments["AptDateTime"] == "timestamp without time zone"
    assert appointments["AptNum"] == "bigint"
    assert appointments["IsNewPatient"] == "boolean"
    assert appointments["office"] == "text"
    patients = column_types(pg_cluster, pg_db, "patients")
    assert patients["Birthdate"] == "date"
    assert column_types(pg_cluster, pg_db, "fees")["Amount"] == "double precision"

    async def change() -> int:
        async with emulator.session("k-pg") as od:
            patient = (await od.patients.list(Limit=1).first_page())[0]
            await od.patients.update(patient.PatNum, LName="Changed")
            await od.commlogs.create(PatNum=patient.PatNum, Note="called", CommDateTime="2024-01-02 10:00:00")
            fee = (await od.fees.list(Limit=1).first_page())[0]
            await od.fees.delete(fee.FeeNum)  # fees are listed whole: the next run removes it
            return patient.PatNum

    changed = asyncio.run(change())
    second = odapi(*sync_args(emulator, "k-pg", url))
    assert second.returncode == 0, second.stderr
    report = {r["resource"]: r for r in json.loads(second.stdout)["offices"][0]["resources"]}
    assert report["patients"]["how"] == "incremental" and report["patients"]["rows"] == 1
    assert report["commlogs"]["rows"] == 1 and report["fees"]["removed"] == 1
    with pg_cluster.admin(pg_db) as conn:
        assert conn.execute('SELECT "LName" FROM patients WHERE "PatNum" = %s', (changed,)).fetchone() == (
            "Changed",
        )
    assert odapi(*sync_args(emulator, "k-pg", sqlite)).returncode == 0
    assert_same(pg_cluster, pg_db, sqlite)


@pytest.mark.slow("three syncs that wait for each other, over a 30 ms emulator (10 to 15 s under load)")
def test_three_concurrent_syncs_of_one_office_take_turns(slow_emulator, pg_cluster, pg_db, tmp_path) -> None:
    """One run per office of a database at a time: the first lists whole, the others wait, then ask for changes."""
    import subprocess
    import sys

    from cli.clitools import _env

    url, sqlite = pg_cluster.url(pg_db), tmp_path / "alone.sqlite"
    args = [
        sys.executable, "-m", "odapi_async.cli", "sync", "--endpoint", f"local={slow_emulator.endpoints['local']}",
        "--mode", "local", "--developer-key", "dev-cli", "--customer-key", "k-overlap", "--json",
        "--resources", RESOURCES,
    ]  # fmt: skip
    procs = [
        subprocess.Popen(
            [*args, "--db", url], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env()
        )
        for _ in range(3)
    ]
    reports = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0 and "error" not in err, err
        reports.append(json.loads(out))
    hows = sorted(
        r["how"]
        for rep in reports
        for r in rep["offices"][0]["resources"]
        if r["resource"] == "procedurelogs"
    )
    assert hows == ["incremental", "incremental", "whole"]
    alone = subprocess.run(
        [*args, "--db", str(sqlite)], capture_output=True, text=True, env=_env(), timeout=120
    )
    assert alone.returncode == 0, alone.stderr
    assert_same(pg_cluster, pg_db, sqlite)
