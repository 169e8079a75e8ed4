"""A pipeline run killed at any point (SIGKILL) and run again ends with exactly the office's rows."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from dlttools import duck_rows, env, office_rows, offices_file, requests, violations

pytestmark = [
    pytest.mark.integration,
    # Four pipeline processes, each importing dlt and loading DuckDB: 20 to 35 s under load, more under coverage.
    pytest.mark.slow("four pipeline runs in subprocesses"),
    pytest.mark.timeout(150),
]

HERE = Path(__file__).parent
OFFICES = {"a": "k-kill-a", "b": "k-kill-b"}
#: Incremental resources, and one listed whole (fees: held until the office's listing completes).
RESOURCES = "appointments,patients,commlogs,fees"


def _served(emulator) -> int:
    return sum(requests(emulator, key, "remote") for key in OFFICES.values())


def test_killed_at_any_point_then_rerun_ends_exact(emulator, tmp_path) -> None:
    # Over the throttled Remote listener (100 rows a page), so that a run spans many requests.
    offices = offices_file(
        tmp_path / "offices.toml", emulator, OFFICES, listener="remote", intervals="{ full = 0.02 }"
    )
    db, pipelines = tmp_path / "loaded.duckdb", tmp_path / "dlt"
    cmd = [sys.executable, str(HERE / "run_pipeline.py"), str(offices), str(db), str(pipelines), RESOURCES]
    loading = pipelines / "killed" / "load" / "normalized"

    def mid_extract(after: int):
        start = _served(emulator)
        return lambda: _served(emulator) - start >= after

    def mid_load():
        return lambda: loading.is_dir() and any(loading.iterdir())

    # Twice while listing (a few requests in, then deeper), once while dlt loads the package into DuckDB.
    for name, reached in [
        ("3 requests in", mid_extract(3)),
        ("15 requests in", mid_extract(15)),
        ("loading", mid_load()),
    ]:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env())
        deadline = time.monotonic() + 60
        while not reached():
            assert proc.poll() is None, f"{name}: the run ended first: {proc.communicate()[1][-2000:]}"
            assert time.monotonic() < deadline, f"{name}: no progress"
            time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=30)
        assert proc.returncode == -signal.SIGKILL, name

    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env())
    assert done.returncode == 0, done.stderr[-3000:]
    for resource in RESOURCES.split(","):
        for office, key in OFFICES.items():
            want = office_rows(emulator, key, resource, office)
            assert want, f"{resource}: the office lists nothing; the comparison would prove nothing"
            have = duck_rows(db, resource, office)
            assert have == want, (
                f"{resource}/{office}: {len(have - want)} extra or stale, {len(want - have)} missing"
            )
    assert all(violations(emulator, key, "remote") == 0 for key in OFFICES.values())
