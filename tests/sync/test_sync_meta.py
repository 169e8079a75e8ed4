"""The generated sync metadata and the pieces of the sync that need no server: layouts, the offices file."""

from __future__ import annotations

import datetime as dt
import sqlite3

import msgspec
import pytest

import odapi_async.resources as models
from odapi_async import OpenDental
from odapi_async.sync import (
    SYNC,
    OfficesFileError,
    SyncStore,
    TableLayout,
    incremental_resources,
    load_offices,
)


@pytest.mark.parametrize("name", list(SYNC))
def test_each_sync_spec_agrees_with_its_model_and_operation(name) -> None:
    spec = SYNC[name]
    model = getattr(models, spec.model)
    fields = {f.name for f in msgspec.structs.fields(model)}
    assert spec.primary_key == model.__od_primary_key__ and spec.primary_key in fields
    assert (spec.watermark == "serverDateTime") == (spec.incremental and "serverDateTime" in fields)
    assert (spec.deletions == "listing") == (not spec.incremental)
    method = getattr(getattr(OpenDental("d", "c"), name), spec.operation)
    if spec.since_param:  # the SDK accepts the filter (checked before any request)
        method(**{spec.since_param: dt.datetime(2024, 1, 1)})


def test_the_documented_incremental_resources() -> None:
    assert set(incremental_resources()) == {
        "appointments", "claimpayments", "claims", "commlogs", "inssubs", "insverifies", "patfields", "patients",
        "procedurecodes", "procedurelogs", "providers", "refattaches", "signalods", "treatplans",
    }  # fmt: skip
    # Patients GET (multiple) takes no DateTStamp; GET Simple does, as the docs say.
    assert (SYNC["patients"].operation, SYNC["patients"].since_param) == ("Simple", "DateTStamp")
    assert SYNC["patients"].deletions == "status"
    assert SYNC["claims"].since_param == "SecDateTEdit" and SYNC["claims"].watermark == "office-clock"
    assert SYNC["fees"].watermark == "none" and SYNC["fees"].deletions == "listing"
    # Appointments are deleted only in the desktop program, which logs it as a HistAppointment "Deleted".
    log = SYNC["appointments"].deletion_log
    assert SYNC["appointments"].deletions == "log" and log is not None
    assert (log.resource, dict(log.filters), log.since_param, log.key) == (
        "histappointments", {"HistApptAction": "Deleted"}, "dateStart", "AptNum",
    )  # fmt: skip
    getattr(OpenDental("d", "c").histappointments, log.operation)(**dict(log.filters), dateStart="2024-01-01")
    assert [name for name, spec in SYNC.items() if spec.deletion_log] == ["appointments"]


def test_a_case_clash_gets_its_own_column_and_values_are_sqlite_values(tmp_path) -> None:
    layout = TableLayout(SYNC["appointments"], models.Appointment)
    assert "Confirmed" in layout.columns and "confirmed__derived" in layout.columns
    assert "serverDateTime" not in layout.columns
    row = models.Appointment(
        AptNum=7, PatNum=3, AptDateTime=dt.datetime(2024, 5, 6, 9, 30), IsNewPatient=True
    )
    with SyncStore(tmp_path / "s.sqlite") as store:
        store.prepare(layout)
        store.write_page(layout, "north", [row], listing=False)
    with sqlite3.connect(tmp_path / "s.sqlite") as conn:
        got = conn.execute(
            "SELECT office, AptNum, AptDateTime, IsNewPatient, DateTimeArrived FROM appointments"
        ).fetchall()
    conn.close()
    assert got == [("north", 7, "2024-05-06 09:30:00", 1, None)]


def test_a_table_gains_the_columns_a_newer_model_has(tmp_path) -> None:
    db = tmp_path / "s.sqlite"
    with sqlite3.connect(db) as conn:
        conn.execute(
            'CREATE TABLE fees (office TEXT NOT NULL, "FeeNum" INTEGER, PRIMARY KEY (office, "FeeNum"))'
        )
    conn.close()
    layout = TableLayout(SYNC["fees"], models.Fee)
    with SyncStore(db) as store:
        store.prepare(layout)
        assert store.claim("north", "run-1", ttl=30) is None
        store.write_page(layout, "north", [models.Fee(FeeNum=1, Amount=12.5)], listing=True, run="run-1")
        assert store.finish(layout, "north", watermark=None, listing=True, listed_rows=1, run="run-1") == 0
        assert store.count("fees", "north") == 1


OFFICES_OK = """
developer_key_env = "MY_DEV"

[defaults]
tier = "full"

[offices.north]
customer_key_env = "NORTH_KEY"
modes = ["service", "remote"]
service_host = "10.0.0.5"

[offices.south]
customer_key = "SOUTH-s3cr3t"
tier = "read_all"

[offices.south.endpoints]
remote = "http://127.0.0.1:9/api/v1"
"""


def test_an_offices_file_is_read_with_defaults_and_environment(tmp_path) -> None:
    path = tmp_path / "offices.toml"
    path.write_text(OFFICES_OK, encoding="utf-8")
    loaded = load_offices(path, {"MY_DEV": "dev-key", "NORTH_KEY": "NORTH-s3cr3t"})
    north, south = loaded.offices
    assert loaded.developer_key == "dev-key"
    assert (north.name, north.customer_key, north.tier, north.modes, north.service_host) == (
        "north", "NORTH-s3cr3t", "full", ("service", "remote"), "10.0.0.5",
    )  # fmt: skip
    assert (south.tier, south.endpoints) == ("read_all", {"remote": "http://127.0.0.1:9/api/v1"})
    assert "s3cr3t" not in repr(loaded)


@pytest.mark.parametrize(
    ("change", "line", "message"),
    [
        (
            ('tier = "read_all"', 'tier = "gold"'),
            14,
            "offices.south.tier: must be one of read_all, full, enterprise, auto; got 'gold'",
        ),
        (
            ('service_host = "10.0.0.5"', "service_host = 5"),
            10,
            "offices.north.service_host: must be a non-empty string",
        ),
        (('remote = "http', 'cloud = "http'), 17, "offices.south.endpoints.cloud: unknown mode 'cloud'"),
        (
            ('customer_key_env = "NORTH_KEY"', 'customer_ky = "x"'),
            8,
            "offices.north.customer_ky: unknown field 'customer_ky'",
        ),
        (
            ('customer_key_env = "NORTH_KEY"', 'customer_key_env = "UNSET_VAR"'),
            8,
            "environment variable UNSET_VAR is not set",
        ),
        (('tier = "full"', "tier = full"), None, "not valid TOML"),
    ],
    ids=["bad tier", "wrong type", "unknown mode", "unknown field", "unset variable", "not toml"],
)
def test_a_bad_offices_file_names_its_line_and_field(tmp_path, change, line, message) -> None:
    path = tmp_path / "offices.toml"
    old, new = change
    path.write_text(OFFICES_OK.replace(old, new, 1), encoding="utf-8")
    with pytest.raises(OfficesFileError) as caught:
        load_offices(path, {"MY_DEV": "d", "NORTH_KEY": "NORTH-s3cr3t"})
    text = str(caught.value)
    assert message in text and "s3cr3t" not in text
    if line is not None:
        assert text.startswith(f"{path}:{line}: ")


async def test_an_office_too_old_for_the_deletion_log_keeps_its_rows_and_says_so(od, mock_api) -> None:
    from odapi_async.sync._engine import _logged_deletions

    mock_api.get("/histappointments").respond(400, text="Version 23.1.30 or later is required.")
    keys, note = await _logged_deletions(od, SYNC["appointments"], dt.datetime(2024, 5, 6, 9, 30))
    assert keys == [] and "23.1.30" in note and "--reconcile" in note
    assert mock_api.calls.last.request.url.params["dateStart"] == "2024-05-06"
    assert mock_api.calls.last.request.url.params["HistApptAction"] == "Deleted"


async def test_a_list_the_office_refuses_fails_that_resource_only(od, mock_api, tmp_path) -> None:
    from odapi_async.sync import OfficeConfig, sync_office, sync_specs

    mock_api.get("/providers").respond(
        json=[{"serverDateTime": "2024-05-06 09:30:00", "ProvNum": 1, "Abbr": "DOC"}]
    )
    mock_api.get("/fees").respond(400, text="Version 99.1 or later is required.")
    mock_api.get("/carriers").respond(json=[{"CarrierNum": 3, "CarrierName": "Acme"}])
    with SyncStore(tmp_path / "s.sqlite") as store:
        done = await sync_office(
            OfficeConfig("north", lambda: od), store, sync_specs(["providers", "fees", "carriers"])
        )
        assert done.error is None
        assert [(r.resource, r.how, r.rows) for r in done.results] == [
            ("providers", "whole", 1), ("fees", "failed", 0), ("carriers", "whole", 1),
        ]  # fmt: skip
        assert done.failures == [
            "fees: BadRequest: 400 GET /fees [local]: Version 99.1 or later is required."
        ]
        providers = store.state("north", "providers")
        assert providers is not None and providers.watermark == "2024-05-06 09:30:00"
        assert store.state("north", "fees") is None and store.count("carriers", "north") == 1


def test_the_eta_counts_the_pages_left_at_the_pace_so_far() -> None:
    from odapi_async.sync import OfficeProgress

    progress = OfficeProgress("north", resource="appointments", resource_rows=500, pages=5, started=100.0)
    progress.finished = 110.0  # 10 s for 5 pages: 2 s a page (no session: unthrottled, 1000-row pages)
    progress.plan = {"appointments": 2500, "patients": 0}
    assert progress.eta() == pytest.approx((2000 / 1000 + 1 + 0 / 1000 + 1) * 2.0)
    progress.plan["claims"] = None  # a first run of claims: its size is unknown
    assert progress.eta() is None
