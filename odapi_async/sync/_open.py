"""Which store ``--db`` names: a ``postgresql://`` URL is a PostgreSQL database, anything else a SQLite file."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from odapi_async import resources as _models
from odapi_async._syncspec import SyncSpec
from odapi_async.sync._postgres import PostgresStore
from odapi_async.sync._sink import SyncSink
from odapi_async.sync._store import SyncStore, TableLayout

__all__ = ["POSTGRES_SCHEMES", "is_postgres_url", "open_store", "prepare_tables"]

#: URL schemes that select PostgreSQL (libpq's two spellings).
POSTGRES_SCHEMES = ("postgresql://", "postgres://")


def is_postgres_url(db: str | Path) -> bool:
    return isinstance(db, str) and db.lower().startswith(POSTGRES_SCHEMES)


def open_store(db: str | Path) -> SyncSink:
    """A ``postgresql://`` URL opens a :class:`PostgresStore`, anything else is a SQLite file's path."""
    if is_postgres_url(db):
        return PostgresStore(str(db))
    return SyncStore(db)


def prepare_tables(store: SyncSink, specs: Sequence[SyncSpec]) -> None:
    """Make every table of a run ready up front, so that a table the store cannot use is reported before any
    request to an office (``odapi sync`` does this; the engine prepares each table again, at no cost)."""
    for spec in specs:
        store.prepare(TableLayout(spec, getattr(_models, spec.model)))
