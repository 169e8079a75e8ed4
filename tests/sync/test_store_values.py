"""What the SQLite store keeps of each field, for every resource a sync copies, and how a row is updated in
place: the rows are converted by a function compiled per model (``_store._compile_rows``), so each kind of field
of each model is checked here against the documented form, as SQLite gives it back."""

from __future__ import annotations

import datetime as dt
import math
import sqlite3
from typing import Any

import msgspec
import pytest

import odapi_async.resources as models
from odapi_async.sync import SYNC, SyncStore, TableLayout
from odapi_async.sync._store import SERVER_COMPUTED


def _sample(hint: Any, n: int) -> tuple[Any, Any]:
    """A value for a field of type ``hint`` (varied by ``n``) and what the table must hold for it."""
    name = getattr(hint, "__name__", "") or repr(hint)
    if hint is bool:
        return n % 2 == 0, 1 if n % 2 == 0 else 0
    if hint is int:
        return 1000 + n, 1000 + n
    if hint is float:
        return n + 0.25, n + 0.25
    if hint is str:
        return f"it's «{n}»", f"it's «{n}»"
    if "List" in repr(hint) or name == "list":
        return [n, n + 1], f"[{n},{n + 1}]"
    if "datetime.datetime" in repr(hint):
        return dt.datetime(2024, 5, 6, 9, n % 60, 7), f"2024-05-06 09:{n % 60:02d}:07"
    if "datetime.date" in repr(hint):
        return dt.date(2023, 1 + n % 12, 2), f"2023-{1 + n % 12:02d}-02"
    raise AssertionError(f"a field type this test does not know: {hint!r}")


def _stored(db, layout: TableLayout) -> list[tuple[Any, ...]]:
    cols = ", ".join(f'"{c}"' for c in ("office", *layout.columns))
    with sqlite3.connect(db) as conn:
        rows = conn.execute(f'SELECT {cols} FROM "{layout.table}" ORDER BY "{layout.pk_column}"').fetchall()
    conn.close()
    return rows


@pytest.mark.parametrize("resource", sorted(SYNC))
def test_every_field_of_every_synced_model_is_stored_as_documented(resource, tmp_path) -> None:
    spec = SYNC[resource]
    model = getattr(models, spec.model)
    layout = TableLayout(spec, model)
    fields = [f for f in msgspec.structs.fields(model) if f.name not in SERVER_COMPUTED]
    full: dict[str, Any] = {}
    expected: list[Any] = []
    for n, f in enumerate(fields):
        value, kept = _sample(_unwrapped(f.type), n)
        full[f.name] = value
        expected.append(kept)
    full[spec.primary_key] = 1
    expected[layout.field_names.index(spec.primary_key)] = 1
    # Every other field at its default: None for dates, 0, "", False, [].
    bare = model(**{spec.primary_key: 2})
    bare_expected = [_default_as_stored(getattr(bare, f.name)) for f in fields]
    bare_expected[layout.field_names.index(spec.primary_key)] = 2
    with SyncStore(tmp_path / "s.sqlite") as store:
        store.prepare(layout)
        store.write_page(layout, "north", [model(**full), bare], listing=False)
        assert list(layout.values("north", model(**full))) == ["north", *expected]
    assert _stored(tmp_path / "s.sqlite", layout) == [("north", *expected), ("north", *bare_expected)]


def _unwrapped(hint: Any) -> Any:
    args = [a for a in getattr(hint, "__args__", ()) if a is not type(None)]
    return args[0] if "Optional" in repr(hint) and len(args) == 1 else hint


def _default_as_stored(value: Any) -> Any:
    if value is None or isinstance(value, (int, float, str)):
        return int(value) if isinstance(value, bool) else value
    if isinstance(value, list):
        return msgspec.json.encode(value).decode()
    raise AssertionError(f"a default this test does not know: {value!r}")


def test_none_and_nan_are_stored_as_null(tmp_path) -> None:
    layout = TableLayout(SYNC["procedurelogs"], models.ProcedureLog)
    row = models.ProcedureLog(ProcNum=5, ProcFee=math.nan, ProcDate=None, DateTStamp=None)
    with SyncStore(tmp_path / "s.sqlite") as store:
        store.prepare(layout)
        store.write_page(layout, "north", [row], listing=False)
    with sqlite3.connect(tmp_path / "s.sqlite") as conn:
        got = conn.execute(
            'SELECT typeof("ProcFee"), typeof("ProcDate"), typeof("DateTStamp") FROM procedurelogs'
        ).fetchone()
    conn.close()
    assert got == ("null", "null", "null")
    assert layout.values("north", row)[layout.columns.index("ProcFee") + 1] is None


def test_an_update_keeps_the_columns_the_model_lacks_and_fires_update_triggers(tmp_path) -> None:
    """A row synced again is updated in place: a column added by the user keeps its value, and an UPDATE
    trigger (not a DELETE and an INSERT) sees the change."""
    db = tmp_path / "s.sqlite"
    layout = TableLayout(SYNC["patients"], models.Patient)
    with SyncStore(db) as store:
        store.prepare(layout)
        store.write_page(layout, "north", [models.Patient(PatNum=1, LName="Old")], listing=False)
    with sqlite3.connect(db) as conn:
        conn.execute("ALTER TABLE patients ADD COLUMN our_note TEXT")
        conn.execute("UPDATE patients SET our_note = 'call back'")
        conn.execute("CREATE TABLE audit (what TEXT, old TEXT, new TEXT)")
        conn.execute(
            "CREATE TRIGGER patients_updated AFTER UPDATE ON patients BEGIN "
            "INSERT INTO audit VALUES ('update', old.LName, new.LName); END"
        )
        conn.execute(
            "CREATE TRIGGER patients_deleted AFTER DELETE ON patients BEGIN "
            "INSERT INTO audit VALUES ('delete', old.LName, NULL); END"
        )
    conn.close()
    with SyncStore(db) as store:
        store.prepare(layout)
        store.write_page(
            layout,
            "north",
            [models.Patient(PatNum=1, LName="New"), models.Patient(PatNum=2, LName="Other")],
            listing=False,
        )
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT PatNum, LName, our_note FROM patients ORDER BY PatNum").fetchall()
        audit = conn.execute("SELECT * FROM audit").fetchall()
    conn.close()
    assert rows == [(1, "New", "call back"), (2, "Other", None)]
    assert audit == [("update", "Old", "New")]


def test_a_file_from_before_keeps_its_rows_and_its_next_whole_listing_ends_exact(tmp_path) -> None:
    """A file whose ``odapi_sync_listed`` has the earlier form (one row per key, left by a listing that never
    finished) opens in the new form, and the office's next whole listing removes exactly what it did not list."""
    db = tmp_path / "s.sqlite"
    layout = TableLayout(SYNC["patients"], models.Patient)
    with SyncStore(db) as store:
        store.prepare(layout)
        rows = [models.Patient(PatNum=n, LName=f"P{n}") for n in (1, 2, 3)]
        store.write_page(layout, "north", rows, listing=False)
    with sqlite3.connect(db) as conn:
        conn.execute("DROP TABLE odapi_sync_listed")
        conn.execute(
            "CREATE TABLE odapi_sync_listed (office TEXT NOT NULL, resource TEXT NOT NULL, run TEXT NOT NULL, "
            "pk INTEGER NOT NULL, PRIMARY KEY (office, resource, run, pk)) WITHOUT ROWID"
        )
        conn.execute("INSERT INTO odapi_sync_listed VALUES ('north', 'patients', 'crashed', 1)")
    conn.close()
    with SyncStore(db) as store:
        store.prepare(layout)
        assert store.claim("north", "run-2", ttl=30) is None
        store.write_page(layout, "north", [rows[0]], listing=True, run="run-2")
        store.write_page(layout, "north", [rows[2]], listing=True, run="run-2")
        assert store.finish(layout, "north", watermark=None, listing=True, listed_rows=2, run="run-2") == 1
    with sqlite3.connect(db) as conn:
        columns = [r[1] for r in conn.execute("PRAGMA table_info(odapi_sync_listed)")]
        kept = conn.execute("SELECT PatNum FROM patients ORDER BY PatNum").fetchall()
        left = conn.execute("SELECT count(*) FROM odapi_sync_listed").fetchone()
    conn.close()
    assert columns == ["office", "resource", "run", "pks"]
    assert kept == [(1,), (3,)] and left == (0,)
