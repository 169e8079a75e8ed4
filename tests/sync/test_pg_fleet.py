"""A fleet into one PostgreSQL database: workers in their own directories (as on separate hosts), one Redis."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis
from cli.clitools import _env, local_rows, odapi
from pg_support import pg_rows
from redis_support import NEEDS_REDIS

pytestmark = [
    *NEEDS_REDIS,
    pytest.mark.slow(
        "worker processes over the throttled Remote listener, lease expiries (10 to 25 s under load)"
    ),
]

RESOURCES = "appointments,patients,procedurelogs,commlogs"
OFFICES = [f"o{n}" for n in range(1, 7)]


def offices_file(emulator, path: Path, names: list[str], interval: float) -> Path:
    """Offices over the emulator's throttled Remote listener (100 rows a page, ``interval`` s apart per key)."""
    entries = "".join(f'\n[offices.{name}]\ncustomer_key = "k-fleet"\n' for name in names)
    path.write_text(
        f'[defaults]\nendpoints = {{ remote = "{emulator.endpoints["remote"]}" }}\nmodes = ["remote"]\n'
        f'tier = "full"\nintervals = {{ full = {interval} }}\n{entries}',
        encoding="utf-8",
    )
    return path


def worker(
    workdir: Path, offices: Path, db: str, redis_url: str, ttl: float, *extra: str
) -> subprocess.Popen[str]:
    workdir.mkdir(parents=True, exist_ok=True)
    args = [
        "sync", "--offices", str(offices), "--db", db, "--resources", RESOURCES, "--json",
        "--developer-key", "dev-cli", "--redis", redis_url, "--lease-ttl", str(ttl), *extra,
    ]  # fmt: skip
    return subprocess.Popen(
        [sys.executable, "-m", "odapi_async.cli", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(), cwd=workdir,
    )  # fmt: skip


def leases(redis_url: str) -> list[str]:
    with redis.Redis.from_url(redis_url, decode_responses=True) as r:
        return [k.rsplit(":", 1)[1] for k in r.keys("odapi:fleet:{default}:lease:*")]


def wait_for(condition, within: float, what: str, proc: subprocess.Popen[str] | None = None) -> None:
    deadline = time.monotonic() + within
    while not condition():  # bounded: until it holds or the time is up
        assert proc is None or proc.poll() is None, f"the worker ended before {what}"
        assert time.monotonic() < deadline, f"no {what} within {within} s"
        time.sleep(0.02)


@pytest.fixture(scope="module")
def lone_sqlite(emulator, tmp_path_factory) -> Path:
    """What a lone SQLite sync (no fleet) of the six offices holds."""
    root = tmp_path_factory.mktemp("lone")
    offices = offices_file(emulator, root / "offices.toml", OFFICES, 0.01)
    db = root / "lone.sqlite"
    run = odapi("sync", "--offices", str(offices), "--db", str(db), "--resources", RESOURCES, "--quiet",
                "--developer-key", "dev-cli", timeout=120)  # fmt: skip
    assert run.returncode == 0, run.stderr
    return db


def assert_like_lone(cluster, database: str, lone: Path, offices: list[str]) -> None:
    for office in offices:
        for resource in RESOURCES.split(","):
            want = local_rows(lone, resource, office)
            assert want, (
                f"{office}/{resource}: the lone sync holds no rows; the comparison would prove nothing"
            )
            have = pg_rows(cluster, database, resource, office)
            assert have == want, f"{office}/{resource}: {len(have - want)} extra, {len(want - have)} missing"


def test_three_workers_one_killed_fill_one_database(
    emulator, pg_cluster, pg_db, redis_server, lone_sqlite, tmp_path
) -> None:
    offices = offices_file(emulator, tmp_path / "offices.toml", OFFICES, 0.05)
    url = pg_cluster.url(pg_db)
    procs = [worker(tmp_path / f"host{i}", offices, url, redis_server.url, 2.0) for i in range(3)]
    try:
        started = time.monotonic()
        wait_for(lambda: len(leases(redis_server.url)) >= 3, 30, "leases taken", procs[0])
        time.sleep(max(0.0, 1.0 - (time.monotonic() - started)))  # "a second in"
        assert procs[0].poll() is None, "the first worker finished within a second: nothing to kill"
        procs[0].send_signal(signal.SIGKILL)
        procs[0].communicate(timeout=10)
        results = [p.communicate(timeout=120) for p in procs[1:]]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.communicate(timeout=10)
    for p, (out, err) in zip(procs[1:], results, strict=True):
        assert p.returncode == 0, err[-3000:]
        assert all(o["ok"] for o in json.loads(out)["offices"])
    assert_like_lone(pg_cluster, pg_db, lone_sqlite, OFFICES)
    for working_dir in (tmp_path / f"host{i}" for i in range(3)):  # nothing written beside the workers
        assert not list(working_dir.iterdir())


@pytest.mark.parametrize(
    "lease",
    ["expires", "expires-unnoticed"],
    ids=["its lease expires", "its lease expires before it can notice: the database refuses its next write"],
)
def test_a_paused_worker_s_writes_after_the_heir_s_first_do_not_survive(
    emulator, pg_cluster, pg_db, redis_server, lone_sqlite, tmp_path, lease
) -> None:
    """SIGSTOP a worker mid-office past its lease, let another take the office and write, then SIGCONT it.

    With a 1 s lease the resumed worker may notice it lost the lease (a renewal is due) before it writes again.
    "expires-unnoticed": a 30 s lease (its renewal 10 s away) that the test ends as Redis would at expiry, so
    the resumed worker's next write reaches the database, which must refuse it (FencedOut).
    """
    office = ["o1"]
    offices = offices_file(emulator, tmp_path / "offices.toml", office, 0.1)
    base = pg_cluster.url(pg_db)
    with pg_cluster.admin(pg_db) as conn:  # who wrote what, when: only committed writes stay in the audit
        conn.execute(
            "CREATE TABLE audit (writer text, at timestamptz, resource text);"
            "CREATE FUNCTION audited() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            "INSERT INTO audit VALUES (current_setting('application_name'), clock_timestamp(), TG_TABLE_NAME); "
            "RETURN NULL; END $$"
        )
    ttl = 1.0 if lease == "expires" else 30.0
    paused = worker(
        tmp_path / "a", offices, base + "?application_name=paused", redis_server.url, ttl, "--round", "r"
    )
    try:

        def written(writer: str) -> int:
            with pg_cluster.admin(pg_db) as conn:
                for table in RESOURCES.split(","):  # the engine creates the tables first; then audit them
                    if conn.execute("SELECT to_regclass(%s)", (table,)).fetchone()[0] is None:
                        return 0
                    conn.execute(
                        f"CREATE OR REPLACE TRIGGER audit_{table} AFTER INSERT OR UPDATE OR DELETE ON {table} "
                        "FOR EACH STATEMENT EXECUTE FUNCTION audited()"
                    )
                return int(
                    conn.execute("SELECT count(*) FROM audit WHERE writer = %s", (writer,)).fetchone()[0]
                )

        wait_for(lambda: written("paused") >= 2, 60, "the first worker's writes", paused)
        paused.send_signal(signal.SIGSTOP)
        stopped = time.monotonic()
        if lease == "expires-unnoticed":
            with redis.Redis.from_url(redis_server.url) as r:
                assert r.delete("odapi:fleet:{default}:lease:o1") == 1
        wait_for(lambda: not leases(redis_server.url), 10, "its lease to expire")
        heir = worker(
            tmp_path / "b", offices, base + "?application_name=heir", redis_server.url, 30.0, "--round", "r"
        )
        wait_for(lambda: written("heir") >= 1, 60, "the heir's first write", heir)
        assert lease != "expires" or time.monotonic() - stopped > ttl
        paused.send_signal(signal.SIGCONT)
        out, err = heir.communicate(timeout=120)
        assert heir.returncode == 0, err[-3000:]
        _, paused_err = paused.communicate(timeout=60)
    finally:
        for p in (paused, *(() if "heir" not in dir() else (heir,))):
            if p.poll() is None:
                os.kill(p.pid, signal.SIGCONT)
                p.kill()
                p.communicate(timeout=10)
    assert paused.returncode == 1, paused_err
    assert "another worker took it over" in paused_err
    if lease == "expires-unnoticed":
        assert "FencedOut" in paused_err, paused_err  # refused by the database, in the write's transaction
    with pg_cluster.admin(pg_db) as conn:
        last_paused, first_heir = conn.execute(
            "SELECT max(at) FILTER (WHERE writer = 'paused'), min(at) FILTER (WHERE writer = 'heir') FROM audit"
        ).fetchone()
    assert last_paused < first_heir  # every write of the paused worker that survived came before the heir's
    assert_like_lone(pg_cluster, pg_db, lone_sqlite, office)


def test_a_fleet_worker_whose_database_fails_reports_one_line(
    emulator, pg_cluster, pg_db, redis_server, lone_sqlite, tmp_path
) -> None:
    """The connection killed mid-page in a fleet worker: its office fails with one line, the next round is exact."""
    offices = offices_file(emulator, tmp_path / "offices.toml", ["o1"], 0.01)
    url = pg_cluster.url(pg_db)
    admin = pg_cluster.admin(pg_db)
    try:
        proc = worker(tmp_path / "w", offices, url, redis_server.url, 30.0)
        made = "SELECT count(*) FROM pg_class WHERE relname = 'procedurelogs'"
        wait_for(lambda: admin.execute(made).fetchone()[0] == 1, 60, "the tables", proc)
        admin.execute("BEGIN")
        admin.execute("LOCK TABLE procedurelogs IN EXCLUSIVE MODE")
        waiting = "SELECT pid FROM pg_stat_activity WHERE application_name = 'odapi sync' AND wait_event_type = 'Lock'"
        wait_for(
            lambda: admin.execute(waiting).fetchone() is not None, 60, "a page waiting on the lock", proc
        )
        admin.execute("SELECT pg_terminate_backend(%s)", (admin.execute(waiting).fetchone()[0],))
        admin.execute("ROLLBACK")
        out, err = proc.communicate(timeout=60)
    finally:
        admin.close()
    assert proc.returncode == 1, err[-3000:]
    assert "Traceback" not in err and "connection lost while writing a page" in err, err[-3000:]
    again = worker(tmp_path / "w", offices, url, redis_server.url, 30.0)
    out, err = again.communicate(timeout=120)
    assert again.returncode == 0, err[-3000:]
    assert_like_lone(pg_cluster, pg_db, lone_sqlite, ["o1"])
