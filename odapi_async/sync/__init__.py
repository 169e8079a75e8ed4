"""Incremental, resumable sync of many offices into SQLite or PostgreSQL (the engine behind ``odapi sync``).

Needs nothing beyond the SDK: the command line is one user of it, a worker of your own can be another. See
docs/sync.md.
"""

from __future__ import annotations

from odapi_async._syncspec import SyncSpec
from odapi_async.resources._generated._sync import SYNC
from odapi_async.sync._engine import (
    OfficeConfig,
    OfficeProgress,
    ResourceResult,
    incremental_resources,
    sync_office,
    sync_offices,
    sync_specs,
    syncable_resources,
)
from odapi_async.sync._fleet import FleetLeases, sync_fleet
from odapi_async.sync._offices import OfficeEntry, OfficesFileError, load_offices
from odapi_async.sync._open import is_postgres_url, open_store
from odapi_async.sync._postgres import PostgresStore
from odapi_async.sync._sink import StoreError, SyncSink
from odapi_async.sync._store import (
    ClaimLost,
    FencedOut,
    RunHolder,
    StoreFileError,
    StoreWriteError,
    SyncStore,
    TableLayout,
)

__all__ = [
    "SYNC",
    "ClaimLost",
    "FencedOut",
    "FleetLeases",
    "OfficeConfig",
    "OfficeEntry",
    "OfficeProgress",
    "OfficesFileError",
    "PostgresStore",
    "ResourceResult",
    "RunHolder",
    "StoreError",
    "StoreFileError",
    "StoreWriteError",
    "SyncSink",
    "SyncSpec",
    "SyncStore",
    "TableLayout",
    "incremental_resources",
    "is_postgres_url",
    "load_offices",
    "open_store",
    "sync_fleet",
    "sync_office",
    "sync_offices",
    "sync_specs",
    "syncable_resources",
]
