"""Open Dental as a dlt source: the offices' data into any dlt destination (DuckDB, PostgreSQL, BigQuery…).

``opendental_source(offices)`` makes one dlt resource per syncable resource (``odapi_async.sync.SYNC``), each
office through its own session (its throttle, its cascade), with the sync engine's watermarks and deletions.
Needs the ``dlt`` extra. See docs/dlt.md.
"""

from __future__ import annotations

try:
    import dlt as _dlt  # noqa: F401  (the top-level dlt package: this module's imports are absolute)
except ImportError:  # pragma: no cover - exercised in a subprocess without dlt
    raise ImportError('odapi_async.dlt needs dlt: pip install "odapi-async[dlt]"') from None

from odapi_async.dlt._failures import FAILED, failed_offices
from odapi_async.dlt._source import opendental_source

__all__ = ["FAILED", "failed_offices", "opendental_source"]
