"""Many stores opening one fresh file at once and preparing the same tables (several ``odapi sync`` processes
started together): every one opens, none fails with "database is locked" and each column is added once.

Each ``SyncStore`` has its own SQLite connection, so to SQLite these are separate writers, as processes are. Two
refusals came at once, with no busy wait, and failed the run as "locked for more than 10 s" (``test_overlap.py``
failed so, now and then): switching a fresh file to WAL while another connection did, and a schema statement in
autocommit (it reads the schema, then takes the write lock) after another connection wrote in between. With the
old code this test failed in every run (several of its 60 rounds)."""

from __future__ import annotations

import sqlite3
import threading

import odapi_async.resources as models
from odapi_async.sync import SYNC, SyncStore, TableLayout

STORES = 6
ROUNDS = 60


def test_stores_opening_a_fresh_file_together_all_open_and_prepare(tmp_path) -> None:
    layouts = [
        TableLayout(SYNC[name], getattr(models, SYNC[name].model)) for name in ("patients", "appointments")
    ]
    failures: list[BaseException] = []
    for n in range(ROUNDS):
        db = tmp_path / f"fresh{n}.sqlite"
        start = threading.Barrier(STORES)

        def open_and_prepare() -> None:
            try:
                start.wait(10)
                with SyncStore(db) as store:  # noqa: B023 (each round's file, joined before the next)
                    for layout in layouts:
                        store.prepare(layout)
            except BaseException as exc:  # reported below
                failures.append(exc)

        threads = [threading.Thread(target=open_and_prepare) for _ in range(STORES)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert not any(t.is_alive() for t in threads)
    assert failures == []
    with sqlite3.connect(tmp_path / "fresh0.sqlite") as conn:
        columns = [r[1] for r in conn.execute('PRAGMA table_info("patients")')]
    conn.close()
    assert columns == ["office", *layouts[0].columns]
