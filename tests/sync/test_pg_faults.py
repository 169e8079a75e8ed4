"""``odapi sync --db postgresql://...`` when the database refuses or fails: one line, exit 1, nothing partial,
and the next run ends with exactly what SQLite holds. Passwords never show."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from cli.clitools import local_rows, odapi, odapi_popen
from pg_support import PostgresCluster, free_port, pg_rows

pytestmark = [
    pytest.mark.integration,
    pytest.mark.slow(
        "each test runs odapi sync processes, some over the throttled Remote listener (6 to 9 s under load)"
    ),
]

RESOURCES = "appointments,patients,procedurelogs,commlogs"
SECRET = "s3cret-Pw-0dapi"  # the sync role's password: must never be printed


def args(emulator, db: str | Path, *extra: str, key: str = "k-fault", remote: bool = False) -> list[str]:
    endpoint = (
        ["--endpoint", f"remote={emulator.endpoints['remote']}", "--tier", "full", "--interval", "full=0.15"]
        if remote
        else ["--endpoint", f"local={emulator.endpoints['local']}"]
    )
    return [
        "sync", "--db", str(db), *endpoint, "--developer-key", "dev-cli", "--customer-key", key,
        "--resources", RESOURCES, "--quiet", *extra,
    ]  # fmt: skip


@pytest.fixture(scope="module")
def sync_role(pg_cluster: PostgresCluster) -> str:
    pg_cluster.create_role("syncer", SECRET)
    return "syncer"


def fails_in_one_line(run, *expected: str) -> str:
    """The run exited 1 with its error on one line (no traceback), naming ``expected``; no password anywhere."""
    assert run.returncode == 1, (run.returncode, run.stderr)
    assert SECRET not in run.stdout + run.stderr
    assert "Traceback" not in run.stderr
    errors = [line for line in run.stderr.splitlines() if "StoreError" in line]
    assert len(errors) == 1, run.stderr
    for text in expected:
        assert text in errors[0], errors[0]
    return errors[0]


def assert_same(cluster, database: str, sqlite: Path, resources: str = RESOURCES) -> None:
    for resource in resources.split(","):
        want = local_rows(sqlite, resource, "default")
        assert want, f"{resource}: SQLite holds no rows; the comparison would prove nothing"
        assert pg_rows(cluster, database, resource, "default") == want, resource


@pytest.fixture(scope="module")
def reference(emulator, tmp_path_factory) -> Path:
    """What a lone SQLite sync of the office holds (the emulator's data does not change in this module)."""
    db = tmp_path_factory.mktemp("ref") / "ref.sqlite"
    run = odapi(*args(emulator, db))
    assert run.returncode == 0, run.stderr
    return db


def count(cluster: PostgresCluster, database: str, sql: str) -> int:
    with cluster.admin(database) as conn:
        row = conn.execute(sql).fetchone()
    return int(row[0]) if row else 0


def test_server_unreachable(emulator, tmp_path) -> None:
    before = emulator.requests("k-fault")
    run = odapi(*args(emulator, f"postgresql://syncer:{SECRET}@127.0.0.1:{free_port()}/nowhere"))
    line = fails_in_one_line(run, "cannot connect to postgresql://syncer@127.0.0.1:", "/nowhere")
    assert "refused" in line
    assert emulator.requests("k-fault") == before  # found before any request to the office


def test_wrong_password_then_pgpassword_and_pgpass(
    emulator, pg_cluster, pg_db, sync_role, reference, tmp_path
) -> None:
    with pg_cluster.admin() as conn:
        conn.execute(f'ALTER DATABASE "{pg_db}" OWNER TO syncer')
    wrong = pg_cluster.url(pg_db, sync_role, "not-" + SECRET)
    for debug in ((), ("--debug",)):
        run = odapi(*debug, *args(emulator, wrong))
        assert run.returncode == 1 and SECRET not in run.stdout + run.stderr
        assert "password authentication failed" in run.stderr
    fails_in_one_line(odapi(*args(emulator, wrong)), "password authentication failed")
    # The password from libpq's places: PGPASSWORD, then a password file.
    bare = pg_cluster.url(pg_db, sync_role, password=None)
    run = odapi(*args(emulator, bare), env={"PGPASSWORD": SECRET, "PGPASSFILE": str(tmp_path / "none")})
    assert run.returncode == 0, run.stderr
    passfile = tmp_path / "pgpass"
    passfile.write_text(f"127.0.0.1:{pg_cluster.port}:{pg_db}:{sync_role}:{SECRET}\n", encoding="utf-8")
    passfile.chmod(0o600)
    run = odapi(*args(emulator, bare), env={"PGPASSFILE": str(passfile)})
    assert run.returncode == 0, run.stderr
    assert_same(pg_cluster, pg_db, reference)
    # And a successful run with the password in the URL prints it nowhere (--json and --debug's logs neither).
    run = odapi("--debug", *args(emulator, pg_cluster.url(pg_db, sync_role, SECRET), "--json"))
    assert run.returncode == 0 and SECRET not in run.stdout + run.stderr
    assert (
        f"connected to postgresql://{sync_role}@127.0.0.1:" in run.stderr
    )  # the debug log names the database


def test_a_store_never_shows_its_password(pg_cluster, pg_db) -> None:
    from odapi_async.sync import PostgresStore, StoreError

    url = pg_cluster.url(pg_db, "postgres", SECRET)  # the superuser's password is another: login refused
    with pytest.raises(StoreError) as caught:
        PostgresStore(url)
    assert SECRET not in str(caught.value) and SECRET not in repr(caught.value)
    assert caught.value.__cause__ is None and caught.value.__suppress_context__
    with PostgresStore(pg_cluster.url(pg_db)) as store:
        assert "pg-super" not in repr(store) and repr(store).startswith(
            "PostgresStore('postgresql://postgres@"
        )


def test_database_missing(emulator, pg_cluster, sync_role) -> None:
    run = odapi(*args(emulator, pg_cluster.url("no_such_db", sync_role, SECRET)))
    fails_in_one_line(run, 'database "no_such_db" does not exist')


def test_a_table_of_the_same_name_with_other_columns(emulator, pg_cluster, pg_db, reference) -> None:
    url = pg_cluster.url(pg_db)
    with pg_cluster.admin(pg_db) as conn:
        conn.execute('CREATE TABLE patients (office text, "PatNum" text, "LName" text)')
    before = emulator.requests("k-fault")
    fails_in_one_line(odapi(*args(emulator, url)), 'table "patients"', 'column "PatNum" is text, not bigint')
    assert emulator.requests("k-fault") == before  # reported before any request
    assert count(pg_cluster, pg_db, "SELECT count(*) FROM odapi_sync_state") == 0
    assert count(pg_cluster, pg_db, "SELECT count(*) FROM appointments") == 0  # no rows of any resource
    with pg_cluster.admin(pg_db) as conn:
        conn.execute("DROP TABLE patients")
    assert odapi(*args(emulator, url)).returncode == 0
    assert_same(pg_cluster, pg_db, reference)


def test_a_role_that_may_only_read(emulator, pg_cluster, pg_db, reference) -> None:
    url = pg_cluster.url(pg_db)
    assert odapi(*args(emulator, url)).returncode == 0  # the owner syncs once
    pg_cluster.create_role(f"reader_{pg_db}", SECRET)
    with pg_cluster.admin(pg_db) as conn:
        conn.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO reader_{pg_db}")
    before_rows = count(pg_cluster, pg_db, "SELECT count(*) FROM patients")
    before = emulator.requests("k-fault")
    run = odapi(*args(emulator, pg_cluster.url(pg_db, f"reader_{pg_db}", SECRET)))
    fails_in_one_line(run, "the role may not")
    assert emulator.requests("k-fault") == before
    assert count(pg_cluster, pg_db, "SELECT count(*) FROM patients") == before_rows
    assert_same(pg_cluster, pg_db, reference)


def _running(proc, what: str, condition, within: float = 60) -> None:
    deadline = time.monotonic() + within
    while not condition():  # bounded: until the condition holds, the sync ends, or the time is up
        assert proc.poll() is None, f"the sync ended before {what}: {proc.stderr.read()}"
        assert time.monotonic() < deadline, f"no {what} within {within} s"
        time.sleep(0.02)


def test_connection_killed_mid_page(emulator, pg_cluster, pg_db, reference) -> None:
    url = pg_cluster.url(pg_db)
    assert odapi(*args(emulator, url, "--resources", "appointments")).returncode == 0
    admin = pg_cluster.admin(pg_db)
    try:
        # Hold procedurelogs so the sync's first page of it waits inside its transaction, then kill its backend.
        proc = odapi_popen(*args(emulator, url))
        _running(
            proc,
            "the procedurelogs table",
            lambda: (
                count(pg_cluster, pg_db, "SELECT count(*) FROM pg_class WHERE relname = 'procedurelogs'") == 1
            ),
        )
        admin.execute("BEGIN")
        admin.execute("LOCK TABLE procedurelogs IN EXCLUSIVE MODE")
        waiting = "SELECT pid FROM pg_stat_activity WHERE application_name = 'odapi sync' AND wait_event_type = 'Lock'"
        _running(proc, "a page waiting on the lock", lambda: admin.execute(waiting).fetchone() is not None)
        pid = admin.execute(waiting).fetchone()[0]
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        admin.execute("ROLLBACK")
        _, stderr = proc.communicate(timeout=60)
    finally:
        admin.close()
    run = type("Run", (), {"returncode": proc.returncode, "stdout": "", "stderr": stderr})
    fails_in_one_line(run, "connection lost while writing a page", "rolled back")
    assert count(pg_cluster, pg_db, "SELECT count(*) FROM procedurelogs") == 0  # nothing of the page
    assert (
        count(pg_cluster, pg_db, "SELECT count(*) FROM odapi_sync_state WHERE resource = 'procedurelogs'")
        == 0
    )
    assert odapi(*args(emulator, url)).returncode == 0
    assert_same(pg_cluster, pg_db, reference)


def test_server_restarted_between_two_pages(emulator, pg_cluster, pg_db, reference) -> None:
    url = pg_cluster.url(pg_db)
    # Over the throttled Remote listener: 100 rows a page, 0.15 s apart, so the run spans many pages.
    proc = odapi_popen(*args(emulator, url, remote=True))
    first_page = "SELECT count(*) FROM pg_class WHERE relname = 'appointments'"
    _running(
        proc,
        "the first page",
        lambda: (
            count(pg_cluster, pg_db, first_page) == 1
            and count(pg_cluster, pg_db, "SELECT count(*) FROM appointments") > 0
        ),
    )
    pg_cluster.restart()
    _, stderr = proc.communicate(timeout=60)
    run = type("Run", (), {"returncode": proc.returncode, "stdout": "", "stderr": stderr})
    fails_in_one_line(run, "connection lost")
    assert count(pg_cluster, pg_db, "SELECT count(*) FROM odapi_sync_state") < len(RESOURCES.split(","))
    assert odapi(*args(emulator, url, remote=True)).returncode == 0
    assert_same(pg_cluster, pg_db, reference)


@pytest.mark.parametrize(
    "url",
    [
        f"postgresql://syncer:{SECRET}@127.0.0.1:notaport/db",
        f"postgresql://syncer:{SECRET}@127.0.0.1:5432/db?nosuchoption=1",
        f"postgresql://syncer:{SECRET}@[::1/db",
    ],
    ids=["a bad port", "an unknown option", "a broken host"],
)
def test_a_malformed_url_is_one_line_without_its_password(emulator, url) -> None:
    run = odapi(*args(emulator, url))
    fails_in_one_line(run)
