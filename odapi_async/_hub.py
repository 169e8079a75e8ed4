"""What every session of a process shares: one connection pool and one throttle registry per event loop.

Sessions are cheap (one per customer key); the expensive parts live here. Connections and asyncio primitives
belong to one event loop, so the state is kept per running loop (a notebook's loop, a worker's loop, each
test's loop), and dropped with the loop.

Pool size. The throttle already bounds concurrency per key (1 in flight per key on Remote, 8 on Local/Service by
default), so pools are not capped (``max_connections=None``): their size follows the concurrency in use, and a
hub-wide cap would only make keys wait on each other. Idle connections expire after ``keepalive_expiry``.

Pool shards. A connection pool looks through its connections on every request, so its CPU cost grows with the
number of connections in it: measured on 500 busy keys, one pool cost ~11 ms of CPU per request, pools of 25
keys ~2 ms. So keys are spread over pools of at most ``keys_per_pool`` keys each (the first 25 keys seen share
the first pool, and so on); one SSL context serves them all.
"""

from __future__ import annotations

import asyncio
import ssl
import weakref
from dataclasses import dataclass, field

import httpx2

from ._throttle import ThrottleRegistry
from ._version import __version__

USER_AGENT = f"odapi-async/{__version__}"


@dataclass
class LoopState:
    """The shared parts for one event loop."""

    throttles: ThrottleRegistry = field(default_factory=ThrottleRegistry)
    pools: list[httpx2.AsyncClient] = field(default_factory=list)
    pool_of_key: dict[str, int] = field(default_factory=dict)
    users: int = 0  # sessions inside ``async with``; the pools close when the last one leaves


class Hub:
    """Shared connection pools and throttle registries, one set per event loop.

    ``odapi_async.default_hub`` serves every session that is not given its own ``hub=``; a separate hub gives a
    group of sessions their own pools and throttles (tests do this to stay independent).
    """

    def __init__(self, *, keys_per_pool: int = 25, keepalive_expiry: float = 30.0) -> None:
        if keys_per_pool < 1:
            raise ValueError("keys_per_pool must be at least 1")
        self._keys_per_pool = keys_per_pool
        self._limits = httpx2.Limits(
            max_connections=None, max_keepalive_connections=None, keepalive_expiry=keepalive_expiry
        )
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

    def client(self, key_id: str) -> httpx2.AsyncClient:
        """The HTTP client (connection pool) that serves ``key_id`` on the running loop."""
        state = self.state()
        index = state.pool_of_key.get(key_id)
        if index is None:
            index = state.pool_of_key[key_id] = len(state.pool_of_key) // self._keys_per_pool
        while len(state.pools) <= index:
            state.pools.append(self._new_client())
        client = state.pools[index]
        if client.is_closed:
            client = state.pools[index] = self._new_client()
        return client

    def _new_client(self) -> httpx2.AsyncClient:
        if self._ssl is None:
            self._ssl = httpx2.create_ssl_context()  # loading CA certificates is slow: once per hub
        return httpx2.AsyncClient(
            limits=self._limits, verify=self._ssl, headers={"User-Agent": USER_AGENT}, follow_redirects=False
        )

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
        pools, state.pools = state.pools, []
        state.pool_of_key.clear()
        for client in pools:
            await client.aclose()


default_hub = Hub()
