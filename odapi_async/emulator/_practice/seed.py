"""The emulator's database: a deterministic synthetic dental practice in SQLite.

``create_store(seed=1, patients=200)`` builds one table per spec resource that has fields (see
:mod:`odapi_async.emulator._practice.schema` for names, columns and stored value forms) and fills the practice: clinics, providers,
operatories, definitions, preferences, procedure codes, fee schedules and fees, carriers and plans, families
of patients with insurance, schedules, appointments in every status, procedures, claims with claim
procedures, claim and patient payments with splits, adjustments, commlogs, recalls and procedure notes.
Other resources get empty tables.

The same seed, counts and ``now`` give an identical database; all times are placed relative to ``now``.
"""

from __future__ import annotations

import datetime as dt
import random
import sqlite3

from odapi_async.emulator._practice.schema import (
    TableSpec,
    column_map,
    create_indexes,
    create_schema,
    lookup,
    table_name,
    table_specs,
    wire_value,
    zero_value,
)
from odapi_async.emulator._practice.seed_patients import PatientGenerator
from odapi_async.emulator._practice.seed_setup import PracticeBuilder
from odapi_async.emulator._practice.word_lists import PROC_NOTES

__all__ = [
    "TableSpec",
    "column_map",
    "create_store",
    "lookup",
    "practice_now",
    "table_name",
    "table_specs",
    "wire_value",
    "zero_value",
]


#: The practice is laid out on a weekly grid: by default its "now" is the latest Monday noon not after the real
#: time, so the same seed gives the same rows (same counts, same weekdays) whatever day the emulator starts; only
#: the dates move, by whole weeks.
WEEKLY_ANCHOR = dt.datetime(2024, 1, 1, 12, 0, 0)  # a Monday, noon
WEEK = dt.timedelta(days=7)


def practice_now(now: dt.datetime | None = None) -> dt.datetime:
    """The moment the synthetic practice is built around, for a real time ``now`` (default: the current time)."""
    real = (now or dt.datetime.now()).replace(microsecond=0, tzinfo=None)
    return WEEKLY_ANCHOR + ((real - WEEKLY_ANCHOR) // WEEK) * WEEK


def add_procedure_notes(conn: sqlite3.Connection, seed: int) -> None:
    """A note on the first procedure of most visits (completed procedures of one patient, day and provider).

    A pass of its own with its own random source, so the rest of the practice is the same with or without it.
    """
    rng = random.Random(seed * 7919 + 17)
    visits = conn.execute(
        'SELECT min("ProcNum"), "PatNum", "ProcDate" FROM procedurelogs WHERE "ProcStatus" = \'C\' '
        'GROUP BY "PatNum", "ProcDate", "ProvNum" ORDER BY 1'
    ).fetchall()
    rows: list[tuple[object, ...]] = []
    for proc_num, pat_num, day in visits:
        if rng.random() < 0.7:
            signed = rng.random() < 0.6
            entry = f"{str(day)[:10]} {9 + int(rng.random() * 8):02d}:{int(rng.random() * 60):02d}:00"
            rows.append((len(rows) + 1, pat_num, proc_num, entry, 1, rng.choice(PROC_NOTES), "false",
                         "true" if signed else "false"))  # fmt: skip
    conn.executemany(
        'INSERT INTO procnotes ("ProcNoteNum", "PatNum", "ProcNum", "EntryDateTime", "UserNum", "Note", '
        '"SigIsTopaz", "isSigned") VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
        rows,
    )


def create_store(
    path: str | None = None, *, seed: int = 1, patients: int = 200, now: dt.datetime | None = None
) -> sqlite3.Connection:
    """Create and fill the practice database; return the open connection (usable from any thread).

    ``path=None`` keeps it in memory; a file path is created (an existing database there is refused by
    SQLite's "table already exists"). ``now`` (exact, if given) defaults to :func:`practice_now`, so that one
    seed gives one practice whatever the day.
    """
    if patients < 0:
        raise ValueError("patients must be >= 0")
    now = now.replace(microsecond=0, tzinfo=None) if now is not None else practice_now()
    conn = sqlite3.connect(path or ":memory:", check_same_thread=False, isolation_level=None)
    conn.execute("PRAGMA journal_mode=" + ("MEMORY" if path is None else "WAL"))
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("PRAGMA temp_store=MEMORY")
    conn.execute("PRAGMA cache_size=-65536")
    conn.execute("BEGIN")
    try:
        create_schema(conn)
        builder = PracticeBuilder(conn, seed, patients, now)
        builder.build_setup()
        builder.build_schedules()
        PatientGenerator(builder).build()
        add_procedure_notes(conn, seed)
        create_indexes(conn)
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        conn.close()
        raise
    conn.execute("PRAGMA synchronous=" + ("OFF" if path is None else "NORMAL"))
    conn.execute("PRAGMA analysis_limit=1000")
    conn.execute("ANALYZE")
    return conn
