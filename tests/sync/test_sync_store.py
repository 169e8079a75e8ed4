"""``SyncStore.fence``: in a database two fleet workers share, a stale lease holder cannot overwrite."""

from __future__ import annotations

import sqlite3

import pytest

import odapi_async.resources as models
from odapi_async.sync import SYNC, SyncStore, TableLayout
from odapi_async.sync._store import FencedOut


def test_a_stale_holder_s_write_is_rolled_back_after_a_newer_one_wrote(tmp_path) -> None:
    db = tmp_path / "shared.sqlite"
    layout = TableLayout(SYNC["patients"], models.Patient)
    with SyncStore(db) as paused, SyncStore(db) as heir:  # two workers, one database
        for store in (paused, heir):
            store.prepare(layout)
        paused.fence("north", 1)
        paused.write_page(layout, "north", [models.Patient(PatNum=1, LName="Old")], listing=False)
        heir.fence("north", 2)  # the lease expired; another worker took the office over
        heir.write_page(layout, "north", [models.Patient(PatNum=1, LName="New")], listing=False)
        with pytest.raises(FencedOut, match="token 2"):
            paused.write_page(layout, "north", [models.Patient(PatNum=1, LName="Stale")], listing=False)
        with pytest.raises(FencedOut):
            paused.finish(layout, "north", watermark="2024-01-01 00:00:00", listing=False, listed_rows=0)
        heir.write_page(layout, "north", [models.Patient(PatNum=2, LName="Also new")], listing=False)
        paused.write_page(layout, "south", [models.Patient(PatNum=3, LName="Other office")], listing=False)
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT office, PatNum, LName FROM patients ORDER BY PatNum").fetchall()
        state = conn.execute("SELECT * FROM odapi_sync_state").fetchall()
    conn.close()
    assert rows == [("north", 1, "New"), ("north", 2, "Also new"), ("south", 3, "Other office")]
    assert state == []  # the stale finish saved no watermark
