"""Fixtures of the sync tests: a session-wide PostgreSQL cluster, a fresh database per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from cli.clitools import EmulatorProcess, start_emulator, stop_emulator
from pg_support import PostgresCluster, fresh_database, start_cluster


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PostgresCluster]:
    """One throwaway cluster for the whole run (``initdb`` once, about a second)."""
    yield from start_cluster()


@pytest.fixture
def pg_db(pg_cluster: PostgresCluster) -> str:
    """The name of a new, empty database on the cluster."""
    return fresh_database(pg_cluster)


@pytest.fixture(scope="module")
def emulator() -> Iterator[EmulatorProcess]:
    """An emulator in its own process, shared by a module's tests."""
    flags = ["--patients", "120", "--interval", "full=0.01", "--interval", "read_all=0.02"]
    for key in ("k-pg", "k-pg2", "k-fault", "k-fleet"):
        flags += ["--customer-key", f"{key}=full"]
    emu = start_emulator(*flags)
    try:
        yield emu
    finally:
        stop_emulator(emu)
