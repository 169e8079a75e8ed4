"""Redis clients for the shared throttle and the sync fleet: one server or a Cluster, from one URL.

Both keep every key a script touches under one hash tag, so each script runs on the node that owns that slot.
A client never re-sends a command by itself (``Retry(..., 0)``): a lost reply to a script that took a lease
must not take a second one. A throttle's waiting acquire needs a connection without a read timeout on the
node that owns its key (:func:`blocking_pool`): its ``BLPOP`` is bounded per call instead.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Union

if TYPE_CHECKING:
    from redis.asyncio import ConnectionPool, Redis, RedisCluster

    Client = Union[Redis, RedisCluster]

__all__ = ["Client", "Script", "blocking_pool", "check_word", "connect", "run_script"]


class Script:
    """A Lua script and its SHA1 (what ``EVALSHA`` names)."""

    __slots__ = ("body", "name", "sha")

    def __init__(self, name: str, body: str) -> None:
        self.name = name
        self.body = body
        self.sha = hashlib.sha1(body.encode()).hexdigest()

    def __repr__(self) -> str:
        return f"<Script {self.name} {self.sha[:8]}>"


def check_word(what: str, text: str) -> None:
    """A name that becomes part of Redis keys: ``:`` separates their parts and braces are hash tags."""
    if not text or any(c in text for c in ":{}"):
        raise ValueError(f"{what} must be a non-empty word without ':', '{{' or '}}'")


def connect(url: str, *, cluster: bool, connect_timeout: float, read_timeout: float | None) -> Client:
    """A client for ``url``: a server, or (``cluster=True``) a Cluster reached through that node."""
    from redis.asyncio import Redis, RedisCluster
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff

    kind: type[Redis] | type[RedisCluster] = RedisCluster if cluster else Redis
    return kind.from_url(
        url,
        socket_connect_timeout=connect_timeout,
        socket_timeout=read_timeout,
        retry=Retry(NoBackoff(), 0),
        decode_responses=True,
    )


async def run_script(
    client: Client,
    script: Script,
    keys: Sequence[str],
    args: Sequence[str | int],
    noscript: Callable[[], None] | None = None,
) -> Any:
    """``EVALSHA``; after ``NOSCRIPT`` (a restart, ``SCRIPT FLUSH``) the script is sent whole, once (and
    ``noscript`` is called, to count it)."""
    from redis.exceptions import NoScriptError

    try:
        return await client.evalsha(script.sha, len(keys), *keys, *args)
    except NoScriptError:
        if noscript is not None:
            noscript()
        return await client.eval(script.body, len(keys), *keys, *args)


async def blocking_pool(
    client: Client, key: str, url: str, connect_timeout: float, cache: dict[tuple[str, int], ConnectionPool]
) -> ConnectionPool:
    """A connection pool without read timeout to the node that owns ``key`` (pools kept in ``cache``)."""
    from redis.asyncio import ConnectionPool, RedisCluster
    from redis.asyncio.connection import parse_url

    where = ("", 0)  # a single server: the URL's
    if isinstance(client, RedisCluster):
        await client.initialize()  # a no-op once the slots are known
        node = client.get_node_from_key(key)
        if node is None:
            from redis.exceptions import SlotNotCoveredError

            raise SlotNotCoveredError(f"no node of the Cluster serves the slot of {key!r}")
        where = (node.host, int(node.port))
    pool = cache.get(where)
    if pool is None:
        timeouts: dict[str, Any] = {
            "socket_connect_timeout": connect_timeout,
            "socket_timeout": None,
            "decode_responses": True,
        }
        if where == ("", 0):
            pool = ConnectionPool.from_url(url, **timeouts)
        else:  # the URL's credentials and TLS, that node's address; a Cluster has database 0 only
            options = {**parse_url(url), "host": where[0], "port": where[1], **timeouts}
            options.pop("db", None)
            pool = ConnectionPool(**options)
        cache[where] = pool
    return pool
