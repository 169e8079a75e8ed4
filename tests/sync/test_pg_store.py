"""``PostgresStore`` beside ``SyncStore``: one interface, the same meaning, fencing in the write's transaction."""

from __future__ import annotations

import os
import sqlite3
import time

import pytest
from pg_support import as_sqlite

import odapi_async.resources as models
from odapi_async.sync import (
    SYNC,
    ClaimLost,
    FencedOut,
    PostgresStore,
    SyncSink,
    SyncStore,
    TableLayout,
    open_store,
)

pytestmark = pytest.mark.integration

PATIENTS = TableLayout(SYNC["patients"], models.Patient)


def patient(num: int, name: str) -> models.Patient:
    return models.Patient(PatNum=num, LName=name)


def rows(store: SyncSink, cluster, database: str) -> list[tuple]:
    sql = 'SELECT office, "PatNum", "LName" FROM patients ORDER BY office, "PatNum"'
    if isinstance(store, PostgresStore):
        with cluster.admin(database) as conn:
            return [tuple(as_sqlite(v) for v in r) for r in conn.execute(sql).fetchall()]
    assert isinstance(store, SyncStore)
    with sqlite3.connect(store.path) as conn:
        found = conn.execute(sql).fetchall()
    conn.close()
    return found


@pytest.fixture(params=["sqlite", "postgres"])
def store_factory(request, tmp_path):
    """Opens stores of one database: a SQLite file, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        target = str(tmp_path / "one.sqlite")
        yield lambda: open_store(tmp_path / "one.sqlite"), None, target
    else:
        cluster = request.getfixturevalue("pg_cluster")
        database = request.getfixturevalue("pg_db")
        yield lambda: open_store(cluster.url(database)), cluster, database


def test_the_same_operations_leave_the_same_rows_and_state(store_factory) -> None:
    open_one, cluster, database = store_factory
    with open_one() as store:
        assert isinstance(store, SyncSink)
        store.prepare(PATIENTS)
        assert store.state("north", "patients") is None and store.count("patients", "north") == 0
        assert store.claim("north", "r1", ttl=30) is None
        store.begin_listing("north", "patients", run="r1")
        store.write_page(
            PATIENTS, "north", [patient(1, "A"), patient(2, "B"), patient(3, "C")], listing=True, run="r1"
        )
        store.write_page(
            PATIENTS, "north", [patient(3, "C2"), patient(3, "C3")], listing=True, run="r1"
        )  # last wins
        assert (
            store.finish(
                PATIENTS, "north", watermark="2024-05-01 10:00:00", listing=True, listed_rows=4, run="r1"
            )
            == 0
        )
        state = store.state("north", "patients")
        assert state is not None and (state.watermark, state.listed_rows) == ("2024-05-01 10:00:00", 4)
        # A whole listing that no longer lists 2 removes it, and only for this office.
        store.write_page(PATIENTS, "south", [patient(2, "South")], listing=False)
        store.begin_listing("north", "patients", run="r1")
        store.write_page(PATIENTS, "north", [patient(1, "A"), patient(3, "C3")], listing=True, run="r1")
        assert (
            store.finish(
                PATIENTS, "north", watermark="2024-05-02 10:00:00", listing=True, listed_rows=2, run="r1"
            )
            == 1
        )
        # An incremental run: a deletion log's keys go, listed_rows stays.
        store.write_page(PATIENTS, "north", [patient(4, "D")], listing=False)
        assert (
            store.finish(PATIENTS, "north", watermark=None, listing=False, listed_rows=9, deleted=[1, 99])
            == 1
        )
        state = store.state("north", "patients")
        assert state is not None and (state.watermark, state.listed_rows) == (None, 2)
        assert store.remove(PATIENTS, "south", [2]) == 1
        assert store.count("patients", "north") == 2 and store.count("nothing", "north") == 0
        assert rows(store, cluster, database) == [("north", 3, "C3"), ("north", 4, "D")]


def test_a_stale_holder_s_write_is_rolled_back_after_a_newer_one_wrote(store_factory) -> None:
    open_one, cluster, database = store_factory
    with open_one() as paused, open_one() as heir:  # two workers, one database
        for store in (paused, heir):
            store.prepare(PATIENTS)
        paused.fence("north", 1)
        paused.write_page(PATIENTS, "north", [patient(1, "Old")], listing=False)
        heir.fence("north", 2)  # the lease expired; another worker took the office over
        heir.write_page(PATIENTS, "north", [patient(1, "New")], listing=False)
        with pytest.raises(FencedOut, match="token 2"):
            paused.write_page(PATIENTS, "north", [patient(1, "Stale")], listing=False)
        with pytest.raises(FencedOut):
            paused.finish(PATIENTS, "north", watermark="2024-01-01 00:00:00", listing=False, listed_rows=0)
        with pytest.raises(FencedOut):
            paused.remove(PATIENTS, "north", [1])
        heir.write_page(PATIENTS, "north", [patient(2, "Also new")], listing=False)
        paused.write_page(PATIENTS, "south", [patient(3, "Other office")], listing=False)
        assert paused.state("north", "patients") is None  # the stale finish saved no watermark
        assert rows(heir, cluster, database) == [
            ("north", 1, "New"),
            ("north", 2, "Also new"),
            ("south", 3, "Other office"),
        ]


def test_a_newer_model_s_fields_become_new_columns(pg_cluster, pg_db) -> None:
    with pg_cluster.admin(pg_db) as conn:  # the table an older version of the model made
        conn.execute(
            'CREATE TABLE patients (office text NOT NULL, "PatNum" bigint, "LName" text, PRIMARY KEY (office, "PatNum"))'
        )
        conn.execute("INSERT INTO patients VALUES ('north', 1, 'Kept')")
    with PostgresStore(pg_cluster.url(pg_db)) as store:
        store.prepare(PATIENTS)
        store.write_page(
            PATIENTS,
            "north",
            [models.Patient(PatNum=2, LName="New", Birthdate=None, FName="F")],
            listing=False,
        )
    with pg_cluster.admin(pg_db) as conn:
        columns = {
            r[0]
            for r in conn.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name = 'patients'"
            )
        }
        found = conn.execute('SELECT "PatNum", "LName", "FName" FROM patients ORDER BY 1').fetchall()
    assert set(PATIENTS.columns) <= columns
    assert found == [(1, "Kept", None), (2, "New", "F")]


def test_the_interface_is_the_same_for_both(tmp_path) -> None:
    public = {n for n in dir(SyncSink) if not n.startswith("_") or n in ("__enter__", "__exit__")}
    public -= {n for n in dir(object)} - {"__enter__", "__exit__"}
    for cls in (SyncStore, PostgresStore):
        assert public <= set(dir(cls)), public - set(dir(cls))


def test_two_runs_never_judge_each_others_listing(store_factory) -> None:
    open_one, cluster, database = store_factory
    with open_one() as store:
        store.prepare(PATIENTS)
        assert store.claim("north", "run-a", ttl=0.0) is None  # expires at once: the next claim takes over
        store.write_page(PATIENTS, "north", [patient(1, "A"), patient(2, "B")], listing=True, run="run-a")
        assert store.claim("north", "run-b", ttl=30) is None
        store.write_page(PATIENTS, "north", [patient(3, "C")], listing=True, run="run-b")
        with pytest.raises(ClaimLost):  # a stalled run that lost its claim commits nothing
            store.finish(PATIENTS, "north", watermark=None, listing=True, listed_rows=2, run="run-a")
        with pytest.raises(ClaimLost):
            store.write_page(PATIENTS, "north", [patient(4, "D")], listing=False, run="run-a")
        assert not store.renew("north", "run-a", ttl=30)
        assert store.count("patients", "north") == 3
        assert store.finish(PATIENTS, "north", watermark=None, listing=True, listed_rows=1, run="run-b") == 2
        store.release("north", "run-b")
        assert rows(store, cluster, database) == [("north", 3, "C")]
        with pytest.raises(ValueError, match="belongs to a run"):
            store.write_page(PATIENTS, "north", [patient(5, "E")], listing=True)


def test_a_live_claim_is_refused_an_expired_or_fenced_one_is_taken(store_factory) -> None:
    open_one, _, _ = store_factory
    with open_one() as first, open_one() as second:
        assert first.claim("north", "run-a", ttl=30) is None
        held = second.claim("north", "run-b", ttl=30)
        assert held is not None and held.holder.endswith(f":{os.getpid()}")
        assert second.claim("south", "run-b", ttl=30) is None  # per office
        assert first.renew("north", "run-a", ttl=0.0)  # now expired
        assert second.claim("north", "run-b", ttl=30) is None
        assert first.claim("north", "run-c", ttl=30) is not None
        first.fence("north", 7)  # a fleet's lease decides: the fenced worker takes the office over
        assert first.claim("north", "run-c", ttl=30) is None
        assert not second.renew("north", "run-b", ttl=30)


def test_postgres_frees_the_claim_of_a_connection_that_went_away(pg_cluster, pg_db) -> None:
    """A run's process died (anywhere: another host too): its connection is gone, and so is its claim."""
    url = pg_cluster.url(pg_db)
    other = PostgresStore(url)
    assert other.claim("north", "run-a", ttl=3600) is None
    with PostgresStore(url) as store:
        assert store.claim("north", "run-b", ttl=30) is not None
        with pg_cluster.admin(pg_db) as conn:  # as if on another host: the pid check cannot help
            conn.execute("UPDATE odapi_sync_run SET holder = 'elsewhere:1'")
        assert store.claim("north", "run-b", ttl=30) is not None
        other.close()
        deadline = time.monotonic() + 10
        while store.claim("north", "run-b", ttl=30) is not None:  # bounded: the server notes the exit at once
            assert time.monotonic() < deadline, "the claim of a closed connection was not freed"
            time.sleep(0.02)


def test_a_lost_connection_fails_one_write_whole_and_the_next_call_reconnects(pg_cluster, pg_db) -> None:
    from odapi_async.sync import StoreError

    with PostgresStore(pg_cluster.url(pg_db)) as store:
        store.prepare(PATIENTS)
        assert store.claim("north", "r1", ttl=30) is None
        store.write_page(PATIENTS, "north", [patient(1, "A")], listing=False, run="r1")
        with pg_cluster.admin(pg_db) as conn:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'odapi sync'"
            )
        with pytest.raises(StoreError, match="connection lost while writing a page"):
            store.write_page(PATIENTS, "north", [patient(2, "B")], listing=False, run="r1")
        assert store.renew("north", "r1", ttl=30)  # a new connection; the claim is still this run's
        store.write_page(PATIENTS, "north", [patient(3, "C")], listing=False, run="r1")
        assert rows(store, pg_cluster, pg_db) == [("north", 1, "A"), ("north", 3, "C")]
