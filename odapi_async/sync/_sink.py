"""The one interface a sync writes through, whichever database holds the copy (SQLite or PostgreSQL).

The engine, the fleet and the event receiver only ever see a :class:`SyncSink`; ``open_store`` (``_open.py``)
picks the database from what ``odapi sync --db`` was given: a ``postgresql://`` URL (PostgreSQL) or a path
(SQLite).

The interface is synchronous on purpose: the engine calls it from the store's own thread (``_writer.py``), one
call after another, so a store's work (converting a page, the database round trips) never holds up the event loop
that fetches the next pages, and both stores share one shape.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from odapi_async._exceptions import OpenDentalError

if TYPE_CHECKING:
    from odapi_async.sync._store import RunHolder, SyncState, TableLayout

__all__ = ["StoreError", "SyncSink"]


class StoreError(OpenDentalError):
    """The sync's database refused or failed (unreachable, a login refused, a table it cannot use, a lost
    connection). The message is one line and never holds a password; the write under way was rolled back."""


@runtime_checkable
class SyncSink(Protocol):
    """Where a sync keeps its rows, its watermarks and its fleet's fencing tokens.

    Every write is one transaction; a watermark is saved only by :meth:`finish`, after (and never without) the
    rows it covers. The engine calls one store from one thread at a time; the fleet and the event receiver
    may call it from others.
    """

    def fence(self, office: str, token: int) -> None:
        """Write ``office`` under a fleet's fencing token from now on: each later write of the office checks, in
        its own transaction, that no newer token has written it, and raises :class:`FencedOut` if one has."""

    def prepare(self, layout: TableLayout) -> None:
        """Make the resource's table ready (create it, add the columns a newer model has)."""

    def claim(self, office: str, run: str, *, ttl: float) -> RunHolder | None:
        """Take ``office`` for ``run`` for ``ttl`` seconds (one run per office of a store at a time); None when
        taken, else the live run holding it. Never waits. A fenced office's claim always succeeds (the fleet's
        lease decides); taking the office forgets every other run's listing keys of it."""

    def renew(self, office: str, run: str, *, ttl: float) -> bool:
        """Extend ``run``'s claim by ``ttl`` seconds from now; False when it holds the office no more."""

    def release(self, office: str, run: str) -> None:
        """Give up ``run``'s claim of ``office`` (nothing when it holds it no more), with its listing keys."""

    def write_page(
        self, layout: TableLayout, office: str, rows: Sequence[Any], *, listing: bool, run: str | None = None
    ) -> None:
        """Upsert one page by primary key, in one transaction (noting its keys under ``run`` when it belongs to a
        whole listing). A write of a ``run`` that no longer holds the office raises :class:`ClaimLost`; ``run``
        None: a write of no run (an API Event's row)."""

    def remove(self, layout: TableLayout, office: str, keys: Sequence[Any], *, run: str | None = None) -> int:
        """Delete rows by primary key; returns how many went."""

    def begin_listing(self, office: str, resource: str, *, run: str) -> None:
        """``run`` starts a whole listing of ``resource``: forget the keys it noted for one before."""

    def finish(
        self,
        layout: TableLayout,
        office: str,
        *,
        watermark: str | None,
        listing: bool,
        listed_rows: int,
        deleted: Sequence[int] = (),
        run: str | None = None,
    ) -> int:
        """End a resource's run in one transaction (the rows ``run``'s whole listing did not list, or the
        ``deleted`` keys, go; then the watermark); returns the rows removed."""

    def state(self, office: str, resource: str) -> SyncState | None:
        """The resource's saved watermark, or None before its first complete run."""

    def count(self, resource: str, office: str) -> int:
        """Rows of ``office`` in the resource's table (0 when there is no table yet)."""

    def close(self) -> None: ...

    def __enter__(self) -> SyncSink: ...

    def __exit__(self, *exc: object) -> None: ...
