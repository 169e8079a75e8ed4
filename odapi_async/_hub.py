"""What every session of a process shares: per event loop, one throttle registry and one connection pool a key.

Sessions are cheap (one per customer key); the expensive parts live here. Connections and asyncio primitives
belong to one event loop, so the state is kept per running loop (a notebook's loop, a worker's loop, each
test's loop), and dropped with the loop.

Pool size. The throttle bounds each key's requests in flight (1 on Remote, 8 on Local/Service by default), so a
key's pool is sized from those caps: it can hold every request the throttle lets through, and no more.

One pool per key. A connection pool looks through all its connections on every request (expiry checks that poll
each socket), so its CPU cost per request grows with the connections in it: measured with 500 busy keys against
the emulator, one shared pool cost ~11 ms of CPU per request, pools of 25 keys ~2 ms, a pool per key ~1.7 ms, the
floor being httpx2's own cost. A key's pool holds at most its in-flight cap of connections; a pool costs ~3 KB
and ~1 ms to create, and one SSL context (slow to load) serves them all.
"""

from __future__ import annotations

import asyncio
import ssl
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx2

from ._throttle import ThrottleRegistry
from ._version import __version__

USER_AGENT = f"odapi-async/{__version__}"


@dataclass
class LoopState:
    """The shared parts for one event loop."""

    throttles: ThrottleRegistry = field(default_factory=ThrottleRegistry)
    pools: dict[str, httpx2.AsyncClient] = field(default_factory=dict)  # by key id
    users: int = 0  # sessions inside ``async with``; the pools close when the last one leaves


class Hub:
    """Shared connection pools and throttle registries, one set per event loop.

    ``odapi_async.default_hub`` serves every session that is not given its own ``hub=``; a separate hub gives a
    group of sessions their own pools and throttles (tests do this to stay independent).
    """

    def __init__(
        self,
        *,
        keepalive_expiry: float = 30.0,
        transport_factory: Callable[[int | None], httpx2.AsyncBaseTransport] | None = None,
    ) -> None:
        """``transport_factory(max_connections)``, if given, makes each key's transport (instrumentation, a
        simulated network in benchmarks); the pool sizing it is passed is then the factory's to honour."""
        self._keepalive_expiry = keepalive_expiry
        self._transport_factory = transport_factory
        self._ssl: ssl.SSLContext | None = None
        self._states: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, LoopState] = (
            weakref.WeakKeyDictionary()
        )

    def state(self) -> LoopState:
        """The shared state of the running event loop (created on first use)."""
        loop = asyncio.get_running_loop()
        found = self._states.get(loop)
        if found is None:
            found = self._states[loop] = LoopState()
        return found

    def client(self, key_id: str, *, max_connections: int | None = None) -> httpx2.AsyncClient:
        """The HTTP client (connection pool) of ``key_id`` on the running loop, shared by its sessions.

        ``max_connections`` sizes the pool when it is created: the session passes the key's in-flight caps, so
        the pool can hold every request the throttle lets through and never makes one wait.
        """
        pools = self.state().pools
        client = pools.get(key_id)
        if client is None or client.is_closed:
            client = pools[key_id] = self._new_client(max_connections)
        return client

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

    def throttles(self) -> ThrottleRegistry:
        """The running loop's throttle registry."""
        return self.state().throttles

    def enter(self) -> None:
        """A session entered ``async with``."""
        self.state().users += 1

    async def leave(self) -> None:
        """A session left ``async with``; the last one out closes the pools."""
        state = self.state()
        state.users = max(0, state.users - 1)
        if state.users == 0:
            await self.aclose()

    async def aclose(self) -> None:
        """Close the running loop's connection pools (a later request opens new ones)."""
        state = self.state()
        pools, state.pools = state.pools, {}
        for client in pools.values():
            await client.aclose()


default_hub = Hub()
