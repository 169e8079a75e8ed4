"""What the sessions of a process share: the throttle backend (per process) and the connection pools (per loop).

Sessions are cheap (one per customer key); the expensive parts live here. ``odapi_async.default_hub`` serves
every session not given its own ``hub=``; a separate hub gives a group of sessions their own throttle state and
pools (tests do this to stay independent).
"""

from __future__ import annotations

import ssl
from collections.abc import Callable
from typing import Any

import httpx2

from ._backend import ProcessThrottle, ThrottleBackend
from ._pools import ConnectionPools
from ._prober import RouterRegistry
from ._version import __version__

USER_AGENT = f"odapi-async/{__version__}"


class Hub:
    """A throttle backend and the connection pools of every loop, shared by the sessions given this hub."""

    def __init__(
        self,
        *,
        throttle: ThrottleBackend | None = None,
        keepalive_expiry: float = 30.0,
        transport_factory: Callable[[int | None], httpx2.AsyncBaseTransport] | None = None,
    ) -> None:
        """``throttle`` is where per-key state lives (default: this process, :class:`ProcessThrottle`).

        ``transport_factory(max_connections)``, if given, makes each key's transport (instrumentation, a
        simulated network in benchmarks); the pool sizing it is passed is then the factory's to honour.
        """
        self.throttle: ThrottleBackend = throttle if throttle is not None else ProcessThrottle()
        self._keepalive_expiry = keepalive_expiry
        self._transport_factory = transport_factory
        self._ssl: ssl.SSLContext | None = None
        self.pools = ConnectionPools(self._new_client)
        self.routers = RouterRegistry()

    def __repr__(self) -> str:
        return f"<Hub throttle={self.throttle!r}>"

    def _new_client(self, max_connections: int | None) -> httpx2.AsyncClient:
        common: dict[str, Any] = {"headers": {"User-Agent": USER_AGENT}, "follow_redirects": False}
        if self._transport_factory is not None:
            return httpx2.AsyncClient(transport=self._transport_factory(max_connections), **common)
        if self._ssl is None:
            self._ssl = httpx2.create_ssl_context()  # loading CA certificates is slow: once per hub
        limits = httpx2.Limits(
            max_connections=max_connections,
            max_keepalive_connections=max_connections,
            keepalive_expiry=self._keepalive_expiry,
        )
        return httpx2.AsyncClient(limits=limits, verify=self._ssl, **common)

    async def aclose(self) -> None:
        """Close the running loop's pools now (a later request opens new ones)."""
        await self.pools.aclose()


default_hub = Hub()
