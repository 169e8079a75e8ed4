"""Make an office's subscriptions match a desired list: :func:`ensure_subscriptions` (``odapi_async.events``)
and ``od.subscriptions.ensure(...)``.

A subscription is identified by what it sends where: (EndPointUrl, WatchTable or UiEventType, Workstation).
One that matches a desired entry is kept, or updated in place when its PollingSeconds, DateTimeStop or Note
differ (PUT keeps its DateTimeStart, so no change is lost or resent); a desired entry with no match is
created; with ``prune`` (the default) the customer key's other subscriptions are deleted.

It works on the ``subscriptions`` resource alone, so it lives beside the resources (whose extras call it); the
events package hands it on to users with the receiver.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from odapi_async.resources._generated.subscriptions import Subscription, Subscriptions

__all__ = ["EnsureResult", "SubscriptionSpec", "ensure_on", "ensure_subscriptions"]


class WithSubscriptions(Protocol):
    """A session (anything with the ``subscriptions`` resource)."""

    @property
    def subscriptions(self) -> Subscriptions: ...


@dataclass(frozen=True)
class SubscriptionSpec:
    """One subscription as it should be: a database event (``WatchTable`` + ``PollingSeconds``) or a UI
    event (``UiEventType``), sent to ``EndPointUrl`` from ``Workstation`` (blank: every workstation)."""

    EndPointUrl: str
    WatchTable: str = ""
    PollingSeconds: int = 0
    UiEventType: str = ""
    Workstation: str = ""
    DateTimeStop: dt.datetime | None = None
    Note: str = ""

    def __post_init__(self) -> None:
        url = urlsplit(self.EndPointUrl)
        if url.scheme not in ("http", "https") or not url.netloc:
            raise ValueError("EndPointUrl must be an http:// or https:// URL")
        if bool(self.WatchTable) == bool(self.UiEventType):
            raise ValueError("a subscription has either a WatchTable or a UiEventType (exactly one)")
        if self.WatchTable and self.PollingSeconds < 1:
            raise ValueError("a WatchTable subscription needs PollingSeconds >= 1")
        if self.UiEventType and self.PollingSeconds:
            raise ValueError("PollingSeconds applies to WatchTable subscriptions only")
        if self.DateTimeStop is not None and self.DateTimeStop.tzinfo is not None:
            raise ValueError("DateTimeStop is office-local time: pass a naive datetime")

    @property
    def identity(self) -> tuple[str, str, str, str]:
        return (self.EndPointUrl, self.WatchTable, self.UiEventType, self.Workstation)


@dataclass
class EnsureResult:
    """What :func:`ensure_subscriptions` did."""

    created: list[Subscription] = field(default_factory=list)
    updated: list[Subscription] = field(default_factory=list)
    deleted: list[Subscription] = field(default_factory=list)
    unchanged: list[Subscription] = field(default_factory=list)


def _identity(sub: Subscription) -> tuple[str, str, str, str]:
    return (sub.EndPointUrl, sub.WatchTable, sub.UiEventType, sub.Workstation)


def _changes(spec: SubscriptionSpec, sub: Subscription) -> dict[str, Any]:
    changes: dict[str, Any] = {}
    if spec.WatchTable and spec.PollingSeconds != sub.PollingSeconds:
        changes["PollingSeconds"] = spec.PollingSeconds
    if spec.DateTimeStop != sub.DateTimeStop:
        changes["DateTimeStop"] = spec.DateTimeStop
    if spec.Note != sub.Note:
        changes["Note"] = spec.Note
    return changes


async def ensure_subscriptions(
    od: WithSubscriptions, desired: Iterable[SubscriptionSpec], *, prune: bool = True
) -> EnsureResult:
    """Create, update and (with ``prune``) delete subscriptions so that the session's customer key has
    exactly ``desired``. Every spec is checked before the first request. Also ``od.subscriptions.ensure(...)``."""
    return await ensure_on(od.subscriptions, desired, prune=prune)


async def ensure_on(
    subscriptions: Subscriptions, desired: Iterable[SubscriptionSpec], *, prune: bool = True
) -> EnsureResult:
    """:func:`ensure_subscriptions` on a session's ``subscriptions`` resource."""
    specs = list(desired)
    by_identity: dict[tuple[str, str, str, str], SubscriptionSpec] = {}
    for spec in specs:
        if not isinstance(spec, SubscriptionSpec):
            raise TypeError(f"expected SubscriptionSpec, got {type(spec).__name__}")
        if spec.identity in by_identity:
            raise ValueError(
                f"two desired subscriptions send {spec.WatchTable or spec.UiEventType} to one URL"
            )
        by_identity[spec.identity] = spec
    result = EnsureResult()
    existing = await subscriptions.list().collect()
    matched: set[tuple[str, str, str, str]] = set()
    for sub in existing:
        spec_or_none = by_identity.get(_identity(sub))
        if spec_or_none is None or _identity(sub) in matched:
            if prune:  # not wanted, or a second copy of a wanted one (it would double every event)
                await subscriptions.delete(sub.SubscriptionNum)
                result.deleted.append(sub)
            continue
        matched.add(_identity(sub))
        changes = _changes(spec_or_none, sub)
        if changes:
            await subscriptions.update(sub.SubscriptionNum, **changes)
            result.updated.append(sub)
        else:
            result.unchanged.append(sub)
    for identity, spec in by_identity.items():
        if identity in matched:
            continue
        body: dict[str, Any] = {"EndPointUrl": spec.EndPointUrl, "Workstation": spec.Workstation}
        if spec.WatchTable:
            body.update(WatchTable=spec.WatchTable, PollingSeconds=spec.PollingSeconds)
        else:
            body["UiEventType"] = spec.UiEventType
        if spec.DateTimeStop is not None:
            body["DateTimeStop"] = spec.DateTimeStop
        if spec.Note:
            body["Note"] = spec.Note
        result.created.append(await subscriptions.create(**body))
    return result
