"""Connection pools: one per (event loop, customer key), shared by the key's sessions, closed when unused.

Connections belong to the loop that opened them, so pools are kept per running loop, weakly: nothing here keeps
a loop alive. Each loop's pools are closed when the loop shuts down (``asyncio.run`` and pytest's loops run
``shutdown_asyncgens`` before closing; a small async generator started in the loop closes the pools then), so
a worker that calls ``asyncio.run`` per job, with or without ``async with``, keeps a flat count of sockets.

A pool closes early only when no session that used it in this loop remains and no request is using it: a
session's ``aclose()`` never closes a pool under another session or a request in flight (the last request out
closes it instead).

One pool per key. A pool looks through all its connections on every request, so its CPU cost per request grows
with its size: measured with 500 busy keys against the emulator, one shared pool cost ~11 ms of CPU per request,
pools of 25 keys ~2 ms, a pool per key ~1.7 ms (httpx2's own floor). A key's pool holds at most the key's
in-flight caps of connections.
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx2

from ._forksafe import reset_after_fork

__all__ = ["ConnectionPools"]

MakeClient = Callable[[int | None], httpx2.AsyncClient]


class _Pool:
    __slots__ = ("active", "client", "closing", "users")

    def __init__(self, client: httpx2.AsyncClient) -> None:
        self.client = client
        self.users: weakref.WeakSet[Any] = weakref.WeakSet()  # sessions that used it in this loop
        self.active = 0  # requests using it now
        self.closing = False


class _LoopPools:
    """The pools of one loop, and the async generator whose finalisation closes them with the loop."""

    __slots__ = ("closer", "pools")

    def __init__(self, forget: Callable[[asyncio.AbstractEventLoop], None]) -> None:
        self.pools: dict[str, _Pool] = {}
        self.closer = _close_at_shutdown(self.pools, forget)
        # Advance it to its ``yield`` now: the loop's asyncgen hooks register it, and the loop's
        # ``shutdown_asyncgens`` then runs its ``finally``.
        try:
            self.closer.asend(None).send(None)
        except StopIteration:
            pass


async def _close_at_shutdown(
    pools: dict[str, _Pool], forget: Callable[[asyncio.AbstractEventLoop], None]
) -> AsyncGenerator[None, None]:
    try:
        yield
    finally:
        clients = [pool.client for pool in pools.values()]
        pools.clear()
        for client in clients:
            await client.aclose()
        # This generator holds its loop (its finaliser is a method of the loop): drop it, or the loop lives on.
        forget(asyncio.get_running_loop())


class ConnectionPools:
    """Every loop's pools of one hub (see the module docstring)."""

    def __init__(self, make_client: MakeClient) -> None:
        self._make_client = make_client
        self._loops: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopPools] = (
            weakref.WeakKeyDictionary()
        )
        self._lock = threading.Lock()  # the mapping is shared by every thread's loop
        reset_after_fork(self, lambda pools: ConnectionPools.__init__(pools, pools._make_client))

    def _here(self) -> _LoopPools:
        loop = asyncio.get_running_loop()
        with self._lock:
            found = self._loops.get(loop)
            if found is None:
                found = self._loops[loop] = _LoopPools(self._forget)
            return found

    def _forget(self, loop: asyncio.AbstractEventLoop) -> None:
        with self._lock:
            self._loops.pop(loop, None)

    def _pool(self, pools: dict[str, _Pool], key_id: str, user: object, max_connections: int | None) -> _Pool:
        pool = pools.get(key_id)
        if pool is None or pool.closing or pool.client.is_closed:
            pool = pools[key_id] = _Pool(self._make_client(max_connections))
        pool.users.add(user)
        return pool

    def client(self, key_id: str, user: object, *, max_connections: int | None) -> httpx2.AsyncClient:
        """The pool of ``key_id`` on the running loop, with ``user`` (a session) counted as using it."""
        return self._pool(self._here().pools, key_id, user, max_connections).client

    @asynccontextmanager
    async def lease(
        self, key_id: str, user: object, *, max_connections: int | None
    ) -> AsyncIterator[httpx2.AsyncClient]:
        """The key's pool for one request: it stays open until the request is done with it."""
        pools = self._here().pools
        pool = self._pool(pools, key_id, user, max_connections)
        pool.active += 1
        try:
            yield pool.client
        finally:
            pool.active -= 1
            if pool.closing and not pool.active:
                if pools.get(key_id) is pool:
                    del pools[key_id]
                await pool.client.aclose()

    async def release(self, user: object) -> None:
        """``user`` is done: close the pools of the running loop that nobody else uses (or will, when idle)."""
        loop = asyncio.get_running_loop()
        with self._lock:
            everywhere = list(self._loops.items())
        for pools_loop, loop_pools in everywhere:
            for key_id, pool in list(loop_pools.pools.items()):
                if user not in pool.users:
                    continue
                pool.users.discard(user)
                # Another loop's pools close when that loop shuts down; this one's when unused.
                if pools_loop is loop and not pool.users:
                    pool.closing = True
                    if not pool.active:
                        del loop_pools.pools[key_id]
                        await pool.client.aclose()

    def open_clients(self) -> list[httpx2.AsyncClient]:
        """The running loop's open pools (for tests and diagnostics)."""
        return [p.client for p in self._here().pools.values() if not p.client.is_closed]

    async def aclose(self) -> None:
        """Close the running loop's pools now, used or not (a later request opens new ones)."""
        loop_pools = self._here()
        found = list(loop_pools.pools.values())
        loop_pools.pools.clear()
        for pool in found:
            await pool.client.aclose()
