"""What a sync needs to know about a resource, generated from the spec (``resources/_generated/_sync.py``).

The SDK and the ``odapi sync`` command read the same table, so that "which list, which filter, which key" has one
answer. See docs/sync.md for the watermark and deletion rules these fields drive.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

#: How deletions at the office reach a local copy.
#: ``listing``: the resource is synced whole, so each complete run removes rows the office no longer lists;
#: ``status``: rows are never removed by the API, a deletion is a status change seen as an update;
#: ``log``: the office keeps a log of deletions (``deletion_log``), read after each incremental run;
#: ``reconcile``: invisible to the incremental filter, removed only by a reconcile pass (a whole listing).
Deletions = Literal["listing", "status", "log", "reconcile"]

#: How the next watermark is found.
#: ``serverDateTime``: the ``serverDateTime`` of the first page of a run (the documented pattern);
#: ``office-clock``: the office's clock read before the run (the rows do not carry ``serverDateTime``);
#: ``none``: no incremental filter, no watermark.
WatermarkRule = Literal["serverDateTime", "office-clock", "none"]


@dataclass(frozen=True)
class DeletionLog:
    """A list that names deleted rows: ``od.<resource>.<operation>(**filters, <since_param>=day)`` → ``key``."""

    resource: str
    operation: str
    filters: tuple[tuple[str, str], ...]
    since_param: str
    """A date filter ("on or after this day")."""
    key: str
    """The field holding the deleted row's primary key."""


@dataclass(frozen=True)
class SyncSpec:
    """One resource as a sync sees it."""

    resource: str
    """The URL segment (``od.<resource>``)."""
    operation: str
    """The list operation to page through (``list``; ``Simple`` for patients, which alone takes DateTStamp)."""
    model: str
    """The row model's name, importable from ``odapi_async.resources``."""
    primary_key: str
    since_param: str | None
    """The "changed on or after" filter (``DateTStamp``, ``SecDateTEdit``, ``SigDateTime``), if any."""
    watermark: WatermarkRule
    deletions: Deletions
    deletion_log: DeletionLog | None = None

    @property
    def incremental(self) -> bool:
        return self.since_param is not None
