"""Hand-written methods of generated resources (the generator never writes here; it adds these as bases).

A resource named in :data:`EXTRAS` gets the mixin as a base class: ``class Subscriptions(SubscriptionsExtras,
Resource)``, and its typed blocking view gets ``Blocking`` + the mixin's name (a Protocol here: the same methods
without ``async``) as a base. Keep each method a thin entry to the module that does the work.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

from odapi_async.resources._subscriptions import EnsureResult, SubscriptionSpec, ensure_on

__all__ = ["EXTRAS", "BlockingSubscriptionsExtras", "SubscriptionsExtras"]


class SubscriptionsExtras:
    """``od.subscriptions.ensure(...)``: make the office's subscriptions match a desired list."""

    async def ensure(self, desired: Iterable[SubscriptionSpec], *, prune: bool = True) -> EnsureResult:
        """Create, update and (with ``prune``, the default) delete this customer key's subscriptions so that
        they are exactly ``desired`` (``odapi_async.events.SubscriptionSpec``); every spec is checked first."""
        resource: Any = self
        return await ensure_on(resource, desired, prune=prune)


class BlockingSubscriptionsExtras(Protocol):
    """``od.subscriptions.ensure(...)`` of the blocking client (types only; it runs the async method)."""

    def ensure(self, desired: Iterable[SubscriptionSpec], *, prune: bool = True) -> EnsureResult:
        """:meth:`SubscriptionsExtras.ensure`, blocking."""


#: Resource segment -> the mixin the generator adds as a base of its class.
EXTRAS: dict[str, str] = {"subscriptions": "SubscriptionsExtras"}
