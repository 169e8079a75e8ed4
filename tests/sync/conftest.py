"""Fixtures of the sync tests: emulators in their own process, a session-wide PostgreSQL cluster."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from cli.clitools import EmulatorProcess, start_emulator, stop_emulator
from pg_support import PostgresCluster, fresh_database, start_cluster

#: Customer keys of this folder's emulator, one per test module that changes the office's data.
KEYS = {"k-overlap": "full", "k-reconcile": "full", "k-skip": "full", "k-errors": "full"}


@pytest.fixture(scope="module")
def slow_emulator() -> Iterator[EmulatorProcess]:
    """The issue's setting: 150 patients and 30 ms on every Local answer, so that runs of one file overlap."""
    flags = ["--patients", "150", "--interval", "full=0.01", "--fault", "local:latency=0.03"]
    for key, tier in KEYS.items():
        flags += ["--customer-key", f"{key}={tier}"]
    emu = start_emulator(*flags)
    try:
        yield emu
    finally:
        stop_emulator(emu)


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
    """An emulator in its own process for the PostgreSQL tests, shared by a module's tests."""
    flags = ["--patients", "120", "--interval", "full=0.01", "--interval", "read_all=0.02"]
    for key in ("k-pg", "k-fault", "k-fleet"):
        flags += ["--customer-key", f"{key}=full"]
    emu = start_emulator(*flags)
    try:
        yield emu
    finally:
        stop_emulator(emu)
