"""The tables' shape: keys, dispositions and column hints from the models, and what bad input gets."""

from __future__ import annotations

import subprocess
import sys

import pytest
from dlttools import env

from odapi_async.dlt import opendental_source
from odapi_async.sync import SYNC, OfficeConfig

OFFICE = [OfficeConfig("north", lambda: None)]  # type: ignore[arg-type,return-value]  # never opened here


def test_hints_follow_the_model_types() -> None:
    source = opendental_source(OFFICE, ["appointments", "patients", "fees"])
    appointments = source.resources["appointments"].compute_table_schema()
    columns = appointments["columns"]
    assert appointments["write_disposition"] == "merge"
    assert [c for c, h in columns.items() if h.get("primary_key")] == ["office", "AptNum"]
    assert columns["AptDateTime"]["data_type"] == "timestamp" and columns["AptDateTime"]["timezone"] is False
    assert columns["IsNewPatient"]["data_type"] == "bool"
    assert (
        columns["Confirmed"]["data_type"] == "bigint" and columns["confirmed__derived"]["data_type"] == "text"
    )
    assert columns["DateTStamp"]["dedup_sort"] == "desc"  # the later version of a row wins within a load
    assert columns["_odapi_deleted"]["hard_delete"] is True  # deletions from the office's log
    assert "serverDateTime" not in columns
    patients = source.resources["patients"].compute_table_schema()["columns"]
    assert patients["Birthdate"]["data_type"] == "date" and patients["EstBalance"]["data_type"] == "double"
    assert "_odapi_deleted" not in patients  # kept, as Open Dental and odapi sync keep them
    fees = source.resources["fees"].compute_table_schema()
    assert [c for c, h in fees["columns"].items() if h.get("merge_key")] == ["office"]  # listed whole


def test_lists_become_json_and_deleted_patients_can_be_removed() -> None:
    listed = [name for name, spec in SYNC.items() if any("List" in repr(t) for t in _types(spec.model))]
    assert listed, "no model with a list field: pick another check"
    source = opendental_source(OFFICE, [listed[0], "patients"], deleted_patients="delete")
    columns = source.resources[listed[0]].compute_table_schema()["columns"]
    assert "json" in {c["data_type"] for c in columns.values()}
    assert source.resources["patients"].compute_table_schema()["columns"]["_odapi_deleted"]["hard_delete"]


def _types(model: str) -> list[object]:
    import msgspec

    import odapi_async.resources

    return [f.type for f in msgspec.structs.fields(getattr(odapi_async.resources, model))]


def test_bad_input_is_refused_before_any_request(tmp_path) -> None:
    with pytest.raises(ValueError, match="cannot sync nothing"):
        opendental_source(OFFICE, ["nothing"])
    with pytest.raises(ValueError, match="repeated: north"):
        opendental_source([*OFFICE, *OFFICE])
    with pytest.raises(ValueError, match="deleted_patients"):
        opendental_source(OFFICE, deleted_patients="purge")  # type: ignore[arg-type]
    bad = tmp_path / "offices.toml"
    bad.write_text('[offices.alpha]\ncustomer_key = "x"\ntier = "gold"\n', encoding="utf-8")
    with pytest.raises(ValueError, match=r"offices.toml:3: offices.alpha.tier"):
        opendental_source(bad)


def test_without_dlt_the_import_names_the_extra() -> None:
    code = "import sys; sys.modules['dlt'] = None; import odapi_async.dlt"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env())
    assert run.returncode == 1
    assert (
        run.stderr.strip().splitlines()[-1]
        == 'ImportError: odapi_async.dlt needs dlt: pip install "odapi-async[dlt]"'
    )


def test_a_bug_fails_the_run_rather_than_passing_for_an_office_failure(tmp_path) -> None:
    """Only the office's errors (the API's, the network's) are an office failing; anything else is raised."""
    import dlt
    from dlt.pipeline.exceptions import PipelineStepFailed

    def broken_factory():
        raise ZeroDivisionError("a bug in the session factory")

    pipeline = dlt.pipeline(
        "bug", destination=dlt.destinations.duckdb(str(tmp_path / "x.duckdb")), pipelines_dir=str(tmp_path)
    )
    with pytest.raises(PipelineStepFailed) as failed:
        pipeline.run(opendental_source([OfficeConfig("north", broken_factory)], ["providers"]))
    assert failed.value.step == "extract"
    cause = failed.value.__cause__  # ResourceExtractionError, caused by the bug itself
    assert cause is not None and isinstance(cause.__cause__, ZeroDivisionError)
