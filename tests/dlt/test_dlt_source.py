"""The dlt source against the emulator: what it loads equals what ``odapi sync`` writes, run after run."""

from __future__ import annotations

import asyncio
from pathlib import Path

import dlt
import pytest
from dlttools import (
    DATASET,
    DEV,
    arrivals,
    duck_rows,
    odapi_sync,
    office_rows,
    offices_file,
    requests,
    sqlite_rows,
    violations,
)

from odapi_async import OpenDental
from odapi_async.dlt import failed_offices, opendental_source

pytestmark = [
    pytest.mark.integration,
    pytest.mark.slow("each test loads DuckDB through dlt one to three times (4 to 16 s under load)"),
]

RESOURCES = ["appointments", "patients", "commlogs", "fees"]


def pipeline(tmp_path: Path, name: str = "opendental_test") -> dlt.Pipeline:
    return dlt.pipeline(
        name,
        destination=dlt.destinations.duckdb(str(tmp_path / "loaded.duckdb")),
        dataset_name=DATASET,
        pipelines_dir=str(tmp_path / "dlt"),
    )


def test_loads_what_odapi_sync_writes_and_a_bad_office_fails_alone(emulator, tmp_path) -> None:
    offices = offices_file(
        tmp_path / "offices.toml",
        emulator,
        {"north": "k-north", "south": "k-south", "broken": "not-a-key-s3cr3t"},
    )
    synced = odapi_sync(tmp_path / "sync.sqlite", offices, ",".join(RESOURCES))
    assert synced.returncode == 1 and "office broken: Unauthorized" in synced.stderr  # the CLI's way

    served = {key: len(arrivals(emulator, key)) for key in ("k-north", "k-south")}
    p = pipeline(tmp_path)
    # jsonl, the file format docs/dlt.md advises for DuckDB (the other tests load dlt's default, insert_values).
    info = p.run(opendental_source(offices, RESOURCES), loader_file_format="jsonl")
    assert not info.has_failed_jobs
    for resource in RESOURCES:
        for office in ("north", "south"):
            loaded = duck_rows(tmp_path / "loaded.duckdb", resource, office)
            written = sqlite_rows(tmp_path / "sync.sqlite", resource, office)
            assert written, f"{resource}: odapi sync wrote no rows; the comparison would prove nothing"
            assert loaded == written, (
                f"{resource}/{office}: {len(loaded - written)} extra, {len(written - loaded)} missing"
            )
        assert duck_rows(tmp_path / "loaded.duckdb", resource, "broken") == set()
    # The offices ran concurrently: each one's requests began before the other's ended.
    north, south = (arrivals(emulator, key)[served[key] :] for key in ("k-north", "k-south"))
    assert north[0] < south[-1] and south[0] < north[-1]
    failed = failed_offices(p)
    assert set(failed) == set(RESOURCES)
    assert all(set(f) == {"broken"} and f["broken"].startswith("Unauthorized") for f in failed.values())
    assert "s3cr3t" not in repr(failed) + repr(p.state)
    # The broken office has no watermark: its next run lists everything.
    state = p.state["sources"]["opendental"]["resources"]
    assert set(state["patients"]["watermarks"]) == {"north", "south"}


def test_a_second_run_loads_only_the_change_and_the_logged_deletion(emulator, tmp_path) -> None:
    key = "k-change"
    # Over the Remote listener (100 rows a page, throttled), so that a whole listing takes several pages.
    offices = offices_file(
        tmp_path / "offices.toml", emulator, {"main": key}, listener="remote", intervals="{ full = 0.01 }"
    )
    resources = ["appointments", "patients", "commlogs"]
    p = pipeline(tmp_path)
    p.run(opendental_source(offices, resources))
    first = requests(emulator, key, "remote")

    async def change() -> tuple[int, int]:
        async with OpenDental(
            DEV, key, modes=("local",), endpoints={"local": emulator.endpoints["local"]}
        ) as od:
            patient = (await od.patients.list(Limit=1).first_page())[0]
            await od.patients.update(patient.PatNum, LName="Changed")
            log = await od.commlogs.create(
                PatNum=patient.PatNum, Note="called", CommDateTime="2024-01-02 10:00:00"
            )
            return patient.PatNum, log.CommlogNum

    pat_num, commlog_num = asyncio.run(change())
    # Deleted in the desktop program (the API has no DELETE for appointments): the row goes and a history entry
    # "Deleted" is written; nothing the DateTStamp filter sees changes.
    gone = emulator.db.execute("SELECT AptNum, PatNum FROM appointments ORDER BY AptNum LIMIT 1").fetchone()
    emulator.db.execute("DELETE FROM appointments WHERE AptNum = ?", (gone[0],))
    emulator.db.execute(
        "INSERT INTO histappointments (HistDateTStamp, HistApptAction, AptNum, PatNum) "
        "VALUES (datetime('now', 'localtime'), 'Deleted', ?, ?)",
        tuple(gone),
    )
    before = requests(emulator, key, "remote")
    p.run(opendental_source(offices, resources))
    # One request per resource for its changes, one for the office's clock (commlogs), one for the deletion log.
    assert requests(emulator, key, "remote") - before == 5 < first
    assert violations(emulator, key, "remote") == 0  # the throttle held, resources running concurrently
    trace = p.last_trace
    assert trace is not None and trace.last_normalize_info is not None
    counts = trace.last_normalize_info.row_counts
    assert {t: n for t, n in counts.items() if not t.startswith("_dlt")} == {
        "patients": 1,
        "commlogs": 1,
        "appointments": 1,  # the deletion
    }
    db = tmp_path / "loaded.duckdb"
    for resource in resources:
        assert duck_rows(db, resource, "main") == office_rows(emulator, key, resource, "main"), resource
    assert ("main", pat_num) in {row[:2] for row in duck_rows(db, "patients", "main")}
    assert gone[0] not in {row[1] for row in duck_rows(db, "appointments", "main")}
    assert commlog_num in {row[1] for row in duck_rows(db, "commlogs", "main")}


def test_a_refresh_lists_whole_again_and_drops_what_the_office_deleted(emulator, tmp_path) -> None:
    """A deleted procedure is invisible to DateTStamp; dlt's ``refresh="drop_data"`` is the reconcile pass."""
    offices = offices_file(tmp_path / "offices.toml", emulator, {"main": "k-north"})
    p = pipeline(tmp_path)
    p.run(opendental_source(offices, ["procedurelogs"]))

    async def delete_one() -> int:
        async with OpenDental(
            DEV, "k-north", modes=("local",), endpoints={"local": emulator.endpoints["local"]}
        ) as od:
            procs = [p async for p in od.procedurelogs.list(ProcStatus="TP")]
            await od.procedurelogs.delete(procs[0].ProcNum)
            return procs[0].ProcNum

    gone = asyncio.run(delete_one())
    db = tmp_path / "loaded.duckdb"
    p.run(opendental_source(offices, ["procedurelogs"]))
    assert gone in {row[1] for row in duck_rows(db, "procedurelogs", "main")}  # still there: invisible
    p.run(opendental_source(offices, ["procedurelogs"]), refresh="drop_data")
    assert duck_rows(db, "procedurelogs", "main") == office_rows(emulator, "k-north", "procedurelogs", "main")
    assert p.state["sources"]["opendental"]["resources"]["procedurelogs"]["watermarks"]["main"]


def test_whole_listings_replace_the_office_rows_and_deleted_patients_can_go(emulator, tmp_path) -> None:
    """Resources without a filter are listed whole: a fee deleted at the office goes, and so do all the rows of
    a list the office emptied. With ``deleted_patients="delete"``, a patient marked Deleted goes too."""
    key, resources = "k-south", ["fees", "operatories", "patients"]
    offices = offices_file(tmp_path / "offices.toml", emulator, {"main": key})
    p = pipeline(tmp_path)
    p.run(opendental_source(offices, resources, deleted_patients="delete"))
    db = tmp_path / "loaded.duckdb"
    assert duck_rows(db, "operatories", "main")

    async def change() -> int:
        async with OpenDental(
            DEV, key, modes=("local",), endpoints={"local": emulator.endpoints["local"]}
        ) as od:
            fee = (await od.fees.list(Limit=1).first_page())[0]
            await od.fees.delete(fee.FeeNum)
            return (await od.patients.list(Limit=1).first_page())[0].PatNum

    deleted_patient = asyncio.run(change())
    # What only the desktop program does: delete a patient (a status), delete the operatories.
    emulator.db.execute(
        "UPDATE patients SET PatStatus = 'Deleted', DateTStamp = datetime('now', 'localtime') WHERE PatNum = ?",
        (deleted_patient,),
    )
    emulator.db.execute("DELETE FROM operatories")
    try:
        p.run(opendental_source(offices, resources, deleted_patients="delete"))
        assert duck_rows(db, "fees", "main") == office_rows(emulator, key, "fees", "main")
        assert duck_rows(db, "operatories", "main") == set()
        patients = office_rows(emulator, key, "patients", "main")
        assert deleted_patient in {row[1] for row in patients}  # the office keeps it...
        assert duck_rows(db, "patients", "main") == {row for row in patients if row[1] != deleted_patient}
    finally:
        emulator.db.execute("UPDATE patients SET PatStatus = 'Patient' WHERE PatNum = ?", (deleted_patient,))
