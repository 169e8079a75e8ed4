"""The emulator's synthetic practice store: schema from the spec, wire-form values, determinism, speed."""

from __future__ import annotations

import datetime as dt
import re
import sqlite3
import time
from collections.abc import Iterator

import pytest

from odapi_async._spec import load_spec
from odapi_async.emulator._practice.seed import (
    column_map,
    create_store,
    practice_now,
    table_name,
    table_specs,
    wire_value,
    zero_value,
)

NOW = dt.datetime(2025, 6, 1, 12, 30, 15)
DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$")
TIME = re.compile(r"^\d{2}:\d{2}:\d{2}$")
NUMBER = re.compile(r"^-?\d+(\.\d+)?$")
APT_STATUSES = {
    "None",
    "Scheduled",
    "Complete",
    "UnschedList",
    "ASAP",
    "Broken",
    "Planned",
    "PtNote",
    "PtNoteCompleted",
}
PROC_STATUSES = {"TP", "C", "EC", "EO", "R", "D", "Cn", "TPi"}


@pytest.fixture(scope="module")
def db() -> Iterator[sqlite3.Connection]:
    conn = create_store(seed=1, patients=200, now=NOW)
    yield conn
    conn.close()


def dump(conn: sqlite3.Connection) -> list[str]:
    return [line for line in conn.iterdump() if "sqlite_stat" not in line]


def count(conn: sqlite3.Connection, table: str) -> int:
    return int(conn.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0])


def column_set(conn: sqlite3.Connection, table: str, sql: str) -> set[object]:
    return {row[0] for row in conn.execute(sql.format(t=table))}


# --- determinism and size ---------------------------------------------------------------------------


def test_same_seed_same_database(db: sqlite3.Connection) -> None:
    again = create_store(seed=1, patients=200, now=NOW)
    assert dump(again) == dump(db)


def test_other_seed_other_database(db: sqlite3.Connection) -> None:
    other = create_store(seed=2, patients=200, now=NOW)
    query = 'SELECT "LName", "FName", "Birthdate" FROM patients ORDER BY "PatNum"'
    assert other.execute(query).fetchall() != db.execute(query).fetchall()
    assert count(other, "patients") == 200


def test_default_now_is_the_current_second() -> None:
    before = dt.datetime.now().replace(microsecond=0)
    conn = create_store(patients=20)
    latest = conn.execute('SELECT max("DateTStamp") FROM appointments').fetchone()[0]
    assert latest <= (dt.datetime.now() + dt.timedelta(seconds=1)).strftime("%Y-%m-%d %H:%M:%S")
    assert latest >= (before - dt.timedelta(days=60)).strftime("%Y-%m-%d %H:%M:%S")


def test_one_seed_one_practice_whatever_the_day() -> None:
    # Started on a Wednesday afternoon or a Saturday morning, the default practice has the same rows.
    wednesday, saturday = dt.datetime(2026, 11, 25, 13, 40), dt.datetime(2026, 11, 28, 9, 5)
    a, b = practice_now(wednesday), practice_now(saturday)
    assert a == b == dt.datetime(2026, 11, 23, 12, 0) and a.weekday() == 0
    assert practice_now(dt.datetime(2026, 11, 30, 12, 0)) == dt.datetime(2026, 11, 30, 12, 0)
    later = practice_now(dt.datetime(2026, 12, 3, 8, 0))
    # (Built around the raw times instead, 200 patients give 910 vs 1010 appointments.)
    first, second = create_store(patients=200, now=a), create_store(patients=200, now=later)
    for table in ("appointments", "procedurelogs", "claims", "payments", "schedules"):
        assert count(first, table) == count(second, table)
    statuses = 'SELECT "AptStatus", count(*) FROM appointments GROUP BY 1 ORDER BY 1'
    assert first.execute(statuses).fetchall() == second.execute(statuses).fetchall()


def test_file_store(tmp_path: object) -> None:
    path = f"{tmp_path}/practice.sqlite"
    conn = create_store(path, patients=30, now=NOW)
    conn.close()
    reopened = sqlite3.connect(path)
    assert count(reopened, "patients") == 30
    reopened.close()


def test_sizes_scale_with_patients(db: sqlite3.Connection) -> None:
    small = create_store(seed=1, patients=50, now=NOW)
    big = create_store(seed=1, patients=800, now=NOW)
    assert count(small, "patients") == 50
    assert count(big, "patients") == 800
    assert count(big, "providers") == 800 // 400 + 3
    for table, low, high in (("appointments", 3.5, 6.5), ("procedurelogs", 7, 14), ("commlogs", 1, 4)):
        per_patient = count(big, table) / 800
        assert low <= per_patient <= high, (table, per_patient)
    for table in (
        "appointments",
        "procedurelogs",
        "claims",
        "claimprocs",
        "payments",
        "paysplits",
        "recalls",
    ):
        assert count(small, table) < count(db, table) < count(big, table), table


# --- schema -----------------------------------------------------------------------------------------


def test_every_resource_with_fields_has_its_table(db: sqlite3.Connection) -> None:
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    with_fields = [r for r in load_spec()["resources"] if r.get("fields")]
    assert len(with_fields) > 90
    for resource in with_fields:
        name = table_name(resource)
        assert name == resource["url_segment"].lower()
        assert name in tables, name
        actual = [row[1] for row in db.execute(f'PRAGMA table_info("{name}")')]
        expected = column_map(resource["name"])
        assert actual == list(expected.values()), name
        assert "serverDateTime" not in expected
        pk = resource.get("primary_key")
        if pk in expected:
            info = {row[1]: row for row in db.execute(f'PRAGMA table_info("{name}")')}
            assert info[expected[pk]][2] == "INTEGER" and info[expected[pk]][5] == 1, name


def test_column_clash_mapping(db: sqlite3.Connection) -> None:
    cols = column_map("Appointments")
    assert cols["Confirmed"] == "Confirmed"
    assert cols["confirmed"] == "confirmed__derived"
    assert cols["unschedStatus"] == "unschedStatus__derived"
    assert cols["provAbbr"] == "provAbbr"  # no clash, no mangling
    assert column_map("appointments") == cols  # URL segment works too
    assert column_map("ProcedureLogs")["priority"] == "priority__derived"
    for spec in table_specs().values():
        lowered = [c.lower() for c in spec.columns.values()]
        assert len(lowered) == len(set(lowered)), spec.resource
    wrong = db.execute(
        'SELECT count(*) FROM appointments a JOIN definitions d ON d."DefNum" = a."Confirmed" '
        'WHERE a."confirmed__derived" != d."ItemName"'
    ).fetchone()[0]
    assert wrong == 0
    assert db.execute('SELECT count(*) FROM appointments WHERE "Confirmed" = 0').fetchone()[0] == 0


def test_derived_fields_match_their_sources(db: sqlite3.Connection) -> None:
    checks = (
        ('SELECT count(*) FROM appointments a JOIN providers p ON p."ProvNum" = a."ProvNum" '
         'WHERE a."provAbbr" != p."Abbr"'),
        ('SELECT count(*) FROM procedurelogs x JOIN procedurecodes c ON c."CodeNum" = x."CodeNum" '
         'WHERE x."procCode" != c."ProcCode" OR x."descript" != c."Descript"'),
        ('SELECT count(*) FROM patients x JOIN providers p ON p."ProvNum" = x."PriProv" '
         'WHERE x."priProvAbbr" != p."Abbr"'),
        ('SELECT count(*) FROM patients x JOIN clinics c ON c."ClinicNum" = x."ClinicNum" '
         'WHERE x."clinicAbbr" != c."Abbr"'),
        ('SELECT count(*) FROM commlogs x JOIN definitions d ON d."DefNum" = CAST(x."CommType" AS INTEGER) '
         'WHERE x."commType__derived" != d."ItemName"'),
        ('SELECT count(*) FROM definitions x WHERE x."category__derived" = \'\''),
    )  # fmt: skip
    for sql in checks:
        assert db.execute(sql).fetchone()[0] == 0, sql


def test_indexes_exist(db: sqlite3.Connection) -> None:
    indexed = {(r[1], r[2]) for r in db.execute(
        "SELECT m.name, m.tbl_name, i.name FROM sqlite_master m, pragma_index_info(m.name) i WHERE m.type='index'"
    )}  # fmt: skip
    for table, column in (("appointments", "PatNum"), ("appointments", "AptDateTime"), ("appointments", "DateTStamp"),
                          ("procedurelogs", "ProcDate"), ("claims", "SecDateTEdit"), ("patients", "DateTStamp")):  # fmt: skip
        assert (table, column) in indexed


# --- content ----------------------------------------------------------------------------------------


def test_referential_sanity(db: sqlite3.Connection) -> None:
    orphans = (
        'SELECT count(*) FROM appointments WHERE "PatNum" NOT IN (SELECT "PatNum" FROM patients)',
        'SELECT count(*) FROM patients WHERE "Guarantor" NOT IN (SELECT "PatNum" FROM patients)',
        'SELECT count(*) FROM patients p WHERE (SELECT g."Guarantor" FROM patients g WHERE g."PatNum" = p."Guarantor") '
        '!= p."Guarantor"',
        'SELECT count(*) FROM claimprocs WHERE "ClaimNum" != 0 AND "ClaimNum" NOT IN (SELECT "ClaimNum" FROM claims)',
        'SELECT count(*) FROM claimprocs WHERE "ProcNum" NOT IN (SELECT "ProcNum" FROM procedurelogs)',
        'SELECT count(*) FROM claims WHERE "PatNum" NOT IN (SELECT "PatNum" FROM patients)',
        'SELECT count(*) FROM claims WHERE "PlanNum" NOT IN (SELECT "PlanNum" FROM insplans)',
        'SELECT count(*) FROM claims c WHERE NOT EXISTS (SELECT 1 FROM claimprocs p WHERE p."ClaimNum" = c."ClaimNum")',
        'SELECT count(*) FROM procedurelogs WHERE "AptNum" != \'0\' AND CAST("AptNum" AS INTEGER) NOT IN '
        '(SELECT "AptNum" FROM appointments)',
        'SELECT count(*) FROM procedurelogs WHERE "CodeNum" NOT IN (SELECT "CodeNum" FROM procedurecodes)',
        'SELECT count(*) FROM paysplits WHERE "PayNum" NOT IN (SELECT "PayNum" FROM payments)',
        'SELECT count(*) FROM paysplits WHERE "ProcNum" NOT IN (SELECT "ProcNum" FROM procedurelogs)',
        'SELECT count(*) FROM appointments WHERE "Op" NOT IN (SELECT "OperatoryNum" FROM operatories)',
        'SELECT count(*) FROM appointments WHERE "ProvNum" NOT IN (SELECT "ProvNum" FROM providers)',
        'SELECT count(*) FROM patplans WHERE "InsSubNum" NOT IN (SELECT "InsSubNum" FROM inssubs)',
        'SELECT count(*) FROM inssubs WHERE "Subscriber" NOT IN (SELECT "PatNum" FROM patients)',
        'SELECT count(*) FROM inssubs WHERE "PlanNum" NOT IN (SELECT "PlanNum" FROM insplans)',
        'SELECT count(*) FROM insplans WHERE "CarrierNum" NOT IN (SELECT "CarrierNum" FROM carriers)',
        'SELECT count(*) FROM fees WHERE "FeeSched" NOT IN (SELECT "FeeSchedNum" FROM feescheds)',
        'SELECT count(*) FROM recalls WHERE "RecallTypeNum" NOT IN (SELECT "RecallTypeNum" FROM recalltypes)',
        'SELECT count(*) FROM commlogs WHERE "PatNum" NOT IN (SELECT "PatNum" FROM patients)',
        'SELECT count(*) FROM adjustments WHERE "PatNum" NOT IN (SELECT "PatNum" FROM patients)',
        'SELECT count(*) FROM schedules WHERE "SchedType" = \'Provider\' AND CAST("ProvNum" AS INTEGER) NOT IN '
        '(SELECT "ProvNum" FROM providers)',
    )
    for sql in orphans:
        assert db.execute(sql).fetchone()[0] == 0, sql
    # The money adds up: a claim's totals are the sums of its procedures.
    bad = db.execute(
        'SELECT count(*) FROM claims c WHERE abs(c."ClaimFee" - (SELECT sum(p."FeeBilled") FROM claimprocs p '
        'WHERE p."ClaimNum" = c."ClaimNum")) > 0.01'
    ).fetchone()[0]
    assert bad == 0
    bad = db.execute(
        'SELECT count(*) FROM payments y WHERE abs(CAST(y."PayAmt" AS REAL) - (SELECT sum(s."SplitAmt") FROM paysplits s '
        'WHERE s."PayNum" = y."PayNum")) > 0.05'
    ).fetchone()[0]
    assert bad == 0


def test_every_status_is_represented(db: sqlite3.Connection) -> None:
    assert column_set(db, "appointments", 'SELECT DISTINCT "AptStatus" FROM {t}') == APT_STATUSES
    assert column_set(db, "procedurelogs", 'SELECT DISTINCT "ProcStatus" FROM {t}') == PROC_STATUSES
    assert {"Received", "NotReceived", "Estimate"} <= column_set(
        db, "claimprocs", 'SELECT DISTINCT "Status" FROM {t}'
    )
    assert {"R", "S"} <= column_set(db, "claims", 'SELECT DISTINCT "ClaimStatus" FROM {t}')
    assert "Patient" in column_set(db, "patients", 'SELECT DISTINCT "PatStatus" FROM {t}')
    # Appointments spread over the past and the future.
    now_text = NOW.strftime("%Y-%m-%d %H:%M:%S")
    assert db.execute('SELECT count(*) FROM appointments WHERE "AptStatus" = \'Complete\' AND "AptDateTime" > ?',
                      (now_text,)).fetchone()[0] == 0  # fmt: skip
    assert db.execute('SELECT count(*) FROM appointments WHERE "AptStatus" = \'Scheduled\' AND "AptDateTime" < ?',
                      (now_text,)).fetchone()[0] == 0  # fmt: skip
    assert (
        db.execute('SELECT count(*) FROM appointments WHERE "AptDateTime" > ?', (now_text,)).fetchone()[0]
        > 50
    )


def test_procedure_codes_and_preferences(db: sqlite3.Connection) -> None:
    assert count(db, "procedurecodes") >= 150
    codes = column_set(db, "procedurecodes", 'SELECT "ProcCode" FROM {t}')
    assert {"D0120", "D1110", "D2740", "D7140"} <= codes
    prefs = dict(db.execute('SELECT "PrefName", "ValueString" FROM preferences').fetchall())
    assert prefs["PracticeTitle"]
    assert "{" not in "".join(prefs.values())


def test_values_are_in_wire_form(db: sqlite3.Connection) -> None:
    checked = 0
    for spec in table_specs().values():
        for field in spec.fields:
            column = spec.columns[field["name"]]
            kind = field["type"]
            values = [r[0] for r in db.execute(f'SELECT DISTINCT "{column}" FROM "{spec.table}" LIMIT 500')]
            where = f"{spec.resource}.{field['name']}"
            for value in values:
                checked += 1
                if field.get("numeric_string"):
                    if field["name"] == spec.primary_key:
                        assert isinstance(value, int), where
                    else:
                        assert isinstance(value, str) and NUMBER.match(value), (where, value)
                elif kind == "int":
                    assert isinstance(value, int), (where, value)
                elif kind == "float":
                    assert isinstance(value, float), (where, value)
                elif kind == "bool":
                    assert value in ("true", "false"), (where, value)
                elif kind == "date":
                    assert isinstance(value, str) and DATE.match(value), (where, value)
                elif kind == "datetime":
                    assert isinstance(value, str) and DATETIME.match(value), (where, value)
                elif kind == "time":
                    assert isinstance(value, str) and TIME.match(value), (where, value)
                elif kind == "enum":
                    assert value in field["enum"], (where, value)
                else:
                    assert isinstance(value, str), (where, value)
    assert checked > 5000


def test_stamps_lie_within_two_years_before_now(db: sqlite3.Connection) -> None:
    now_text = NOW.strftime("%Y-%m-%d %H:%M:%S")
    oldest = (NOW - dt.timedelta(days=800)).strftime("%Y-%m-%d")
    for spec in table_specs().values():
        for name in ("DateTStamp", "SecDateTEdit", "SecDateEntry"):
            if name not in spec.columns or count(db, spec.table) == 0:
                continue
            low, high = db.execute(f'SELECT min("{name}"), max("{name}") FROM "{spec.table}"').fetchone()
            assert oldest <= low and high <= now_text, (spec.table, name, low, high)


# --- helpers for the server -------------------------------------------------------------------------


def test_zero_and_wire_values() -> None:
    assert zero_value({"type": "int"}) == 0
    assert zero_value({"type": "int", "numeric_string": True}) == "0"
    assert zero_value({"type": "float"}) == 0.0
    assert zero_value({"type": "str"}) == ""
    assert zero_value({"type": "bool"}) == "false"
    assert zero_value({"type": "date"}) == "0001-01-01"
    assert zero_value({"type": "datetime"}) == "0001-01-01 00:00:00"
    assert zero_value({"type": "time"}) == "00:00:00"
    assert zero_value({"type": "enum", "enum": ["Scheduled", "Complete"]}) == "Scheduled"
    assert wire_value({"type": "bool"}, True) == "true"
    assert wire_value({"type": "bool"}, "True") == "true"
    assert wire_value({"type": "float", "numeric_string": True}, 75) == "75.00"
    assert wire_value({"type": "int", "numeric_string": True}, "12") == "12"
    assert wire_value({"type": "int"}, "12") == 12
    assert wire_value({"type": "date"}, dt.date(2024, 2, 3)) == "2024-02-03"
    assert wire_value({"type": "datetime"}, "2024-02-03T04:05:06") == "2024-02-03 04:05:06"
    assert wire_value({"type": "datetime"}, None) == "0001-01-01 00:00:00"


@pytest.mark.slow("builds a 2 000-patient practice (6 s under load)")
def test_two_thousand_patients_build_quickly() -> None:
    started = time.perf_counter()
    conn = create_store(seed=3, patients=2000, now=NOW)
    elapsed = time.perf_counter() - started
    assert count(conn, "patients") == 2000
    assert count(conn, "appointments") > 8000
    assert count(conn, "procedurelogs") > 16000
    assert elapsed < 20  # about 1.5 s on the project's 2-core machine; generous for loaded CI
