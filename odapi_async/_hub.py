"""What every session of a process shares: one connection pool and one throttle registry per event loop.

Sessions are cheap (one per customer key); the expensive parts live here. Connections and asyncio primitives
belong to one event loop, so the state is kept per running loop (a notebook's loop, a worker's loop, each
test's loop), and dropped with the loop.

Pool size. The throttle already bounds concurrency per key (1 in flight per key on Remote, 8 on Local/Service by
default), so the pool itself is not capped (``max_connections=None``): its size follows the concurrency in use,
and a hub-wide cap would only make keys wait on each other. Idle connections kept alive are bounded.
"""

from __future__ import annotations

import asyncio
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
    client: httpx2.AsyncClient | None = None
    users: int = 0  # sessions inside ``async with``; the pool closes when the last one leaves


class Hub:
    """Shared connection pools and throttle registries, one set per event loop.

    ``odapi_async.default_hub`` serves every session that is not given its own ``hub=``; a separate hub gives a
    group of sessions their own pool and throttles (tests do this to stay independent).
    """

    def __init__(self, *, max_keepalive_connections: int = 200, keepalive_expiry: float = 30.0) -> None:
        self._limits = httpx2.Limits(
            max_connections=None,
            max_keepalive_connections=max_keepalive_connections,
            keepalive_expiry=keepalive_expiry,
        )
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

    def client(self) -> httpx2.AsyncClient:
        """The running loop's shared HTTP client."""
        state = self.state()
        if state.client is None or state.client.is_closed:
            state.client = httpx2.AsyncClient(
                limits=self._limits, headers={"User-Agent": USER_AGENT}, follow_redirects=False
            )
        return state.client

    def throttles(self) -> ThrottleRegistry:
        """The running loop's throttle registry."""
        return self.state().throttles

    def enter(self) -> None:
        """A session entered ``async with``."""
        self.state().users += 1

    async def leave(self) -> None:
        """A session left ``async with``; the last one out closes the pool."""
        state = self.state()
        state.users = max(0, state.users - 1)
        if state.users == 0:
            await self.aclose()

    async def aclose(self) -> None:
        """Close the running loop's connection pool (a later request opens a new one)."""
        state = self.state()
        client, state.client = state.client, None
        if client is not None:
            await client.aclose()


default_hub = Hub()
