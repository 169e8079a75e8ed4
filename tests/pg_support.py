"""A real, throwaway PostgreSQL cluster for tests: ``initdb`` into a temporary directory, a free loopback port.

Tests run as root here and on CI, and PostgreSQL refuses to run as root: the cluster is created and run as the
``postgres`` user (``runuser``), in a directory that user owns. It is made for speed, not safety (``fsync=off``,
no WAL flushes), its unix socket lives in the same directory, and it can be restarted on the same port (a
server restart mid-sync). Password logins over TCP (``scram-sha-256``); the superuser also logs in without one
through the socket, which is how the tests set roles and databases up.

Where PostgreSQL or psycopg cannot be found the tests that need it skip with one line, unless
``ODAPI_REQUIRE_POSTGRES=1`` (CI sets it): then they fail.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from redis_support import free_port

#: The superuser's password for TCP logins (the tests' own throwaway cluster).
SUPERUSER_PASSWORD = "pg-super-7f3a"
START_SECONDS = 30


def _bindir() -> Path | None:
    """Where ``initdb`` and ``pg_ctl`` live: on PATH, or Debian's versioned directory (the newest)."""
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3].split(".")[0])
    )
    return Path(candidates[-1]).parent if candidates else None


def why_not() -> str | None:
    """Why the PostgreSQL tests cannot run here, or None when they can."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return "psycopg is not installed (pip install -e '.[test]')"
    if _bindir() is None:
        return "PostgreSQL is not installed (initdb not found; apt-get install postgresql)"
    if os.geteuid() == 0:
        try:
            import pwd

            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root and there is no 'postgres' user to run the server as"
        if shutil.which("runuser") is None:
            return "running as root and runuser is missing"
    return None


def require() -> None:
    """Skip (one line), or fail where ``ODAPI_REQUIRE_POSTGRES=1``."""
    reason = why_not()
    if reason is None:
        return
    if os.environ.get("ODAPI_REQUIRE_POSTGRES") == "1":
        pytest.fail(f"PostgreSQL tests required (ODAPI_REQUIRE_POSTGRES=1) but {reason}", pytrace=False)
    pytest.skip(f"PostgreSQL tests skipped: {reason}")


class PostgresCluster:
    """One ``postgres`` server of a fresh cluster (``start``, ``restart``, ``stop``)."""

    def __init__(self, *, fast: bool = True) -> None:
        """``fast``: no fsync at all (tests); else fsync on and ``synchronous_commit=off``, which like the SQLite
        store's WAL with ``synchronous=NORMAL`` survives a killed process but may lose the last commits to a power
        cut (benchmarks)."""
        self.fast = fast
        bindir = _bindir()
        assert bindir is not None
        self.bindir = bindir
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="odapi-pg-"))
        self.data = self.root / "data"
        self.socket_dir = str(self.root)
        self._as_postgres = os.geteuid() == 0
        if self._as_postgres:
            shutil.chown(self.root, "postgres", "postgres")
        self.root.chmod(0o700)

    def _run(self, *cmd: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        argv = [str(self.bindir / cmd[0]), *cmd[1:]]
        if self._as_postgres:
            argv = ["runuser", "-u", "postgres", "--", *argv]
        found = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, cwd=self.root)
        if found.returncode != 0:
            raise RuntimeError(
                f"{cmd[0]} failed ({found.returncode}): {(found.stderr or found.stdout)[-2000:]}"
            )
        return found

    def init(self) -> None:
        pwfile = self.root / "pw"
        pwfile.write_text(SUPERUSER_PASSWORD + "\n", encoding="utf-8")
        if self._as_postgres:
            shutil.chown(pwfile, "postgres", "postgres")
        self._run(
            "initdb", "-D", str(self.data), "-U", "postgres", f"--pwfile={pwfile}", "--auth-local=trust",
            "--auth-host=scram-sha-256", "--no-sync", "-E", "UTF8", "--locale=C",
        )  # fmt: skip
        pwfile.unlink()

    def start(self) -> None:
        options = " ".join(
            [
                f"-p {self.port}",
                "-c listen_addresses=127.0.0.1",
                f"-c unix_socket_directories={self.socket_dir}",
                *(("-c fsync=off", "-c full_page_writes=off") if self.fast else ()),
                "-c synchronous_commit=off",
                "-c shared_buffers=32MB",
                "-c max_connections=60",
            ]
        )
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.root / "log"), "-o", options, "-w",
                  "-t", str(START_SECONDS), "start")  # fmt: skip

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def restart(self) -> None:
        self.stop()
        self.start()

    def close(self) -> None:
        try:
            self.stop("immediate")
        except (RuntimeError, subprocess.TimeoutExpired):
            pass  # never started, or already stopped
        shutil.rmtree(self.root, ignore_errors=True)

    # ------------------------------------------------------------------------------------------- use

    def url(self, database: str, user: str = "postgres", password: str | None = SUPERUSER_PASSWORD) -> str:
        """A ``postgresql://`` URL over TCP (the password in it only when given)."""
        auth = f"{user}:{password}" if password is not None else user
        return f"postgresql://{auth}@127.0.0.1:{self.port}/{database}"

    def admin(self, database: str = "postgres") -> Any:
        """A superuser connection through the socket (autocommit), for setting a test up and checking it."""
        import psycopg

        return psycopg.connect(
            host=self.socket_dir, port=self.port, user="postgres", dbname=database, autocommit=True
        )

    def create_database(self, name: str, owner: str = "postgres") -> None:
        with self.admin() as conn:
            conn.execute(f'CREATE DATABASE "{name}" OWNER "{owner}"')

    def create_role(self, name: str, password: str, *options: str) -> None:
        with self.admin() as conn:
            conn.execute(f"CREATE ROLE \"{name}\" LOGIN PASSWORD '{password}' {' '.join(options)}")


def start_cluster(*, fast: bool = True) -> Iterator[PostgresCluster]:
    """For a session fixture: a started cluster, removed afterwards."""
    require()
    cluster = PostgresCluster(fast=fast)
    try:
        cluster.init()
        cluster.start()
        yield cluster
    finally:
        cluster.close()


_databases = iter(range(1, 1_000_000))


def fresh_database(cluster: PostgresCluster) -> str:
    """A new empty database on the shared cluster (each test its own: nothing leaks between them)."""
    name = f"t{next(_databases)}_{int(time.time() * 1000) % 100000}"
    cluster.create_database(name)
    return name


def as_sqlite(value: Any) -> Any:
    """A value read from PostgreSQL in the form the SQLite store holds it (to compare the two copies)."""
    import datetime as dt

    import msgspec

    if isinstance(value, bool):
        return int(value)
    if isinstance(value, dt.datetime):
        return value.isoformat(" ")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, (list, dict)):
        return msgspec.json.encode(value).decode()
    return value


def pg_rows(cluster: PostgresCluster, database: str, resource: str, office: str) -> set[tuple[Any, ...]]:
    """An office's rows of one table, in the SQLite store's form and column order."""
    import odapi_async.resources
    from odapi_async.sync import SYNC, TableLayout

    layout = TableLayout(SYNC[resource], getattr(odapi_async.resources, SYNC[resource].model))
    cols = ", ".join(f'"{c}"' for c in ("office", *layout.columns))
    with cluster.admin(database) as conn:
        rows = conn.execute(f'SELECT {cols} FROM "{resource}" WHERE office = %s', (office,)).fetchall()
    return {tuple(as_sqlite(v) for v in row) for row in rows}


def column_types(cluster: PostgresCluster, database: str, table: str) -> dict[str, str]:
    with cluster.admin(database) as conn:
        return dict(
            conn.execute(
                "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = %s",
                (table,),
            ).fetchall()
        )
