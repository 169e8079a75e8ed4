"""Two or three ``odapi sync`` processes on one file at once end with exactly the office's rows (issue 21, case 1).

Before runs owned their listings, the second run's listing judged the first's keys: a table ended with 637 of
1637 rows, every watermark saved, both runs exiting 0. Now each office of a store admits one run at a time (the
others wait, then sync what changed), so exactly one run lists each resource whole on a fresh file.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest
from cli.clitools import _env, assert_equal, local_rows

pytestmark = [
    pytest.mark.integration,
    pytest.mark.slow("two or three odapi processes, each a whole or incremental sync, one after the other"),
]

RESOURCES = "patients,procedurelogs,appointments,commlogs"


def start_sync(emulator, key: str, db: Path, *extra: str) -> subprocess.Popen[str]:
    args = [
        sys.executable, "-m", "odapi_async.cli", "sync", "--db", str(db),
        "--endpoint", f"local={emulator.endpoints['local']}", "--mode", "local",
        "--developer-key", "dev-cli", "--customer-key", key, "--json", "--resources", RESOURCES, *extra,
    ]  # fmt: skip
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env())


def run_together(emulator, key: str, db: Path, flags: list[tuple[str, ...]]) -> list[dict]:
    """Start one process per entry of ``flags`` at once; each must exit 0 with no error line."""
    procs = [start_sync(emulator, key, db, *extra) for extra in flags]
    reports = []
    for proc in procs:
        out, err = proc.communicate(timeout=90)
        assert proc.returncode == 0, err
        assert "locked" not in err and "error" not in err, err
        reports.append(json.loads(out))
    return reports


def hows(reports: list[dict], resource: str) -> list[str]:
    return sorted(
        r["how"] for report in reports for r in report["offices"][0]["resources"] if r["resource"] == resource
    )


@pytest.mark.parametrize("processes", [2, 3])
def test_concurrent_syncs_of_a_fresh_file_end_exact(slow_emulator, tmp_path, processes) -> None:
    db = tmp_path / "x.sqlite"
    reports = run_together(slow_emulator, "k-overlap", db, [()] * processes)
    assert_equal(slow_emulator, db, "k-overlap", "default", RESOURCES.split(","))
    # One run at a time per office: the first lists everything, the others ask for what changed since.
    assert hows(reports, "procedurelogs") == sorted(["whole"] + ["incremental"] * (processes - 1))
    assert sum(r["removed"] for rep in reports for r in rep["offices"][0]["resources"]) == 0


@pytest.mark.parametrize("processes", [2, 3])
def test_concurrent_syncs_with_reconcile_end_exact(slow_emulator, tmp_path, processes) -> None:
    """The docs' schedule: a regular run and the nightly ``--reconcile`` start at the same minute (and a third)."""
    key, db = "k-reconcile", tmp_path / f"x{processes}.sqlite"
    (first,) = run_together(slow_emulator, key, db, [()])

    async def change() -> int:
        async with slow_emulator.session(key) as od:
            patient = (await od.patients.list(Limit=1).first_page())[0]
            await od.patients.update(patient.PatNum, LName=f"Changed{processes}")
            procs = await od.procedurelogs.list(ProcStatus="TP").first_page()
            await od.procedurelogs.delete(
                procs[0].ProcNum
            )  # invisible to DateTStamp: only a reconcile sees it
            return procs[0].ProcNum

    gone = asyncio.run(change())
    flags = [("--reconcile",), (), ("--reconcile",)][:processes]
    reports = run_together(slow_emulator, key, db, flags)
    assert_equal(slow_emulator, db, key, "default", RESOURCES.split(","))
    assert gone not in {row[1] for row in local_rows(db, "procedurelogs", "default")}
    assert hows(reports, "procedurelogs").count("reconcile") == flags.count(("--reconcile",))
    assert hows([first], "procedurelogs") == ["whole"]
