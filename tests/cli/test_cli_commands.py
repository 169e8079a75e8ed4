"""``odapi demo``, ``get``, ``probe`` and usage errors, run as a user runs them."""

from __future__ import annotations

import csv
import io
import json

import pytest
from clitools import assert_equal, odapi, start_emulator, stop_emulator

from odapi_async import OpenDental
from odapi_async.sync import incremental_resources

pytestmark = pytest.mark.integration


@pytest.mark.slow("starts its own emulator and syncs it in a subprocess (10 s under load)")
def test_demo_syncs_the_emulators_rows_exactly(tmp_path) -> None:
    db = tmp_path / "demo.sqlite"
    run = odapi("demo", "--patients", "300", "--db", str(db), timeout=120)
    assert run.returncode == 0, run.stderr
    assert "scaled down" in run.stdout and str(db) in run.stdout.replace("\n", "")
    assert "Throttle violations counted by the emulator: 0" in run.stdout
    # The same seed and size make the same practice in another process: compare row sets with it.
    twin = start_emulator("--patients", "300", "--customer-key", "twin=full")
    try:
        non_empty = [r for r in incremental_resources() if r not in ("insverifies", "patfields", "refattaches",
                                                                      "signalods", "treatplans")]  # fmt: skip
        for office in ("northside", "riverside"):
            assert_equal(twin, db, "twin", office, non_empty)
    finally:
        stop_emulator(twin)


@pytest.mark.slow("three `odapi get` subprocesses after the emulator starts (12 s under coverage, load)")
def test_get_streams_ndjson_csv_and_a_table(emulator) -> None:
    base = [
        "--endpoint",
        f"local={emulator.endpoints['local']}",
        "--developer-key",
        "dev-cli",
        "--customer-key",
        "k-get",
    ]
    ndjson = odapi("get", "providers", *base)
    assert ndjson.returncode == 0, ndjson.stderr
    providers = [json.loads(line) for line in ndjson.stdout.splitlines()]
    assert len(providers) >= 2 and all("ProvNum" in p and "serverDateTime" in p for p in providers)

    as_csv = odapi(
        "get",
        "appointments",
        "-p",
        "PatNum=5",
        "--format",
        "csv",
        "--fields",
        "AptNum,PatNum,AptStatus",
        *base,
    )
    assert as_csv.returncode == 0, as_csv.stderr
    rows = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    assert (
        rows and {r["PatNum"] for r in rows} == {"5"} and list(rows[0]) == ["AptNum", "PatNum", "AptStatus"]
    )

    first = providers[0]["ProvNum"]
    table = odapi("get", "providers", str(first), "--format", "table", "--fields", "ProvNum,Abbr", *base)
    assert table.returncode == 0, table.stderr
    assert "ProvNum" in table.stdout and providers[0]["Abbr"] in table.stdout


def test_usage_errors_exit_2_with_one_line() -> None:
    unknown = odapi("get", "patientz", "--endpoint", "local=http://127.0.0.1:9/api/v1")
    assert unknown.returncode == 2 and unknown.stderr.startswith("error: unknown resource 'patientz'")
    bad = odapi("sync", "--endpoint", "moon=http://x", "--customer-key", "k")
    assert bad.returncode == 2 and "expected MODE=URL" in bad.stderr and "Traceback" not in bad.stderr


def test_probe_reports_the_cascade_or_says_it_is_not_available(emulator) -> None:
    run = odapi(
        "probe", "--developer-key", "dev-cli", "--customer-key", "k-get",
        "--endpoint", f"local={emulator.endpoints['local']}", "--endpoint", f"remote={emulator.endpoints['remote']}",
    )  # fmt: skip
    if hasattr(OpenDental, "probe"):
        assert run.returncode == 0, run.stderr
        assert "local" in run.stdout and "requests go to: local" in run.stdout
    else:
        assert run.returncode == 2
        assert run.stderr.strip() == (
            "error: odapi probe is not available in this version of odapi_async (no OpenDental.probe())"
        )
