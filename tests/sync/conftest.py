"""Fixtures of the sync tests: a session-wide PostgreSQL cluster, a fresh database per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pg_support import PostgresCluster, fresh_database, start_cluster


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PostgresCluster]:
    """One throwaway cluster for the whole run (``initdb`` once, about a second)."""
    yield from start_cluster()


@pytest.fixture
def pg_db(pg_cluster: PostgresCluster) -> str:
    """The name of a new, empty database on the cluster."""
    return fresh_database(pg_cluster)
