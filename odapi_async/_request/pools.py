"""Connection pools: one per (event loop, customer key), shared by the key's sessions, closed when unused.

Connections belong to the loop that opened them, so pools are kept per running loop (``_util/perloop.py``): each
loop's pools are closed when the loop shuts down, so a worker that calls ``asyncio.run`` per job, with or
without ``async with``, keeps a flat count of sockets.

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
import weakref
from collections.abc import Callable
from types import TracebackType
from typing import Any

import httpx2

from odapi_async._util.forksafe import reset_after_fork
from odapi_async._util.perloop import PerLoop

__all__ = ["ConnectionPools", "PoolLease"]

MakeClient = Callable[[int | None], httpx2.AsyncClient]


class _Pool:
    __slots__ = ("active", "client", "closing", "users")

    def __init__(self, client: httpx2.AsyncClient) -> None:
        self.client: httpx2.AsyncClient = client
        self.users: weakref.WeakSet[Any] = weakref.WeakSet()  # sessions that used it in this loop
        self.active: int = 0  # requests using it now
        self.closing: bool = False


class PoolLease:
    """One request's use of a pool (a plain class: entered once per request, cheaper than a generator's)."""

    __slots__ = ("_key_id", "_pool", "_pools")

    def __init__(self, pools: dict[str, _Pool], key_id: str, pool: _Pool) -> None:
        self._pools = pools
        self._key_id = key_id
        self._pool = pool

    async def __aenter__(self) -> httpx2.AsyncClient:
        self._pool.active += 1
        return self._pool.client

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        pool = self._pool
        pool.active -= 1
        if pool.closing and not pool.active:
            # The last request out closes a pool its sessions have released (module docstring).
            if self._pools.get(self._key_id) is pool:
                del self._pools[self._key_id]
            await pool.client.aclose()


async def _close_pools(pools: dict[str, _Pool]) -> None:
    clients = [pool.client for pool in pools.values()]
    pools.clear()
    for client in clients:
        await client.aclose()


class ConnectionPools:
    """Every loop's pools of one hub (see the module docstring)."""

    def __init__(self, make_client: MakeClient) -> None:
        self._make_client = make_client
        self._loops: PerLoop[dict[str, _Pool]] = PerLoop(dict, _close_pools)
        reset_after_fork(self, lambda pools: ConnectionPools.__init__(pools, pools._make_client))

    def _pool(self, pools: dict[str, _Pool], key_id: str, user: object, max_connections: int | None) -> _Pool:
        pool = pools.get(key_id)
        if pool is None or pool.closing or pool.client.is_closed:
            pool = pools[key_id] = _Pool(self._make_client(max_connections))
        pool.users.add(user)
        return pool

    def client(self, key_id: str, user: object, *, max_connections: int | None) -> httpx2.AsyncClient:
        """The pool of ``key_id`` on the running loop, with ``user`` (a session) counted as using it."""
        return self._pool(self._loops.here(), key_id, user, max_connections).client

    def lease(self, key_id: str, user: object, *, max_connections: int | None) -> PoolLease:
        """The key's pool for one request (``async with pools.lease(...) as client``): it stays open until the
        request is done with it."""
        pools = self._loops.here()
        return PoolLease(pools, key_id, self._pool(pools, key_id, user, max_connections))

    async def release(self, user: object) -> None:
        """``user`` is done: close the pools of the running loop that nobody else uses (or will, when idle)."""
        loop = asyncio.get_running_loop()
        for pools_loop, loop_pools in self._loops.items():
            for key_id, pool in list(loop_pools.items()):
                if user not in pool.users:
                    continue
                pool.users.discard(user)
                # Another loop's pools close when that loop shuts down; this one's when unused.
                if pools_loop is loop and not pool.users:
                    pool.closing = True
                    if not pool.active:
                        del loop_pools[key_id]
                        await pool.client.aclose()

    def open_clients(self) -> list[httpx2.AsyncClient]:
        """The running loop's open pools (for tests and diagnostics)."""
        return [p.client for p in self._loops.here().values() if not p.client.is_closed]

    async def aclose(self) -> None:
        """Close the running loop's pools now, used or not (a later request opens new ones)."""
        await _close_pools(self._loops.here())
