"""RedisThrottle and the sync fleet on a real Redis Cluster (three masters on loopback, no replicas).

Each key's state carries its hash tag, so every script runs on the node that owns its slot; the tests pick
customer keys whose state lives on different nodes.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Iterator
from typing import Any

import pytest
import redis.asyncio as redis_asyncio
from redis_support import INTERVALS, NEEDS_REDIS, RedisClusterServers, remote_stats

from odapi_async import OpenDental, RedisThrottle
from odapi_async._session import key_id_for
from odapi_async._throttle.redis_scripts import state_keys
from odapi_async.sync import FleetLeases

pytestmark = [*NEEDS_REDIS, pytest.mark.skipif(shutil.which("redis-cli") is None, reason="no redis-cli")]


@pytest.fixture(scope="module")
def cluster() -> Iterator[RedisClusterServers]:
    servers = RedisClusterServers()
    try:
        servers.start()
        yield servers
    finally:
        servers.close()


def _keys_on_two_nodes(cluster: RedisClusterServers) -> tuple[str, str]:
    """Two customer keys of the emulator whose throttle state lives on different nodes."""
    by_node: dict[int, str] = {}
    for customer_key in (f"k{n}" for n in range(1, 10)):
        by_node.setdefault(
            cluster.node_of(state_keys("odapi", "remote", key_id_for(customer_key))[0]), customer_key
        )
        if len(by_node) == 2:
            first, second = by_node.values()
            return first, second
    raise AssertionError("every key hashed to one node")


async def test_two_processes_on_a_cluster_space_each_key_on_its_own_node(
    emu: Any, cluster: RedisClusterServers
) -> None:
    emu.reset_stats()
    one, two = _keys_on_two_nodes(cluster)
    throttles = [RedisThrottle(cluster.url, cluster=True) for _ in range(2)]  # two "processes"
    sessions = [
        OpenDental(
            "dev",
            key,
            endpoints=emu.endpoints,
            modes=("remote",),
            tier="full",
            intervals=INTERVALS,
            throttle=t,
        )
        for t in throttles
        for key in (one, two)
    ]
    try:

        async def run(od: OpenDental) -> None:
            for _ in range(4):
                await od.request("GET", "/patients", params={"Limit": 1})

        await asyncio.gather(*[run(od) for od in sessions])
    finally:
        for od in sessions:
            await od.aclose()
    for key in (one, two):
        st = remote_stats(emu, key)
        assert (st["requests"], st["violations"]) == (8, 0)
    for throttle in throttles:
        for counters in throttle.redis_stats().values():
            assert counters.requests == 4
            assert counters.calls == 2 * counters.requests + counters.busy + counters.noscript
    for key in (one, two):  # the state is on the node that owns its slot
        base = state_keys("odapi", "remote", key_id_for(key))[0]
        node = redis_asyncio.Redis(port=cluster.node_of(base))
        try:
            assert await node.exists(base, f"{base}:rtts") == 2
        finally:
            await node.aclose()


async def test_a_fleet_leases_offices_on_a_cluster(cluster: RedisClusterServers) -> None:
    async with (
        FleetLeases(cluster.url, group="g1", cluster=True, ttl=5) as a,
        FleetLeases(cluster.url, group="g1", cluster=True, ttl=5) as b,
    ):
        round_no = await a.begin_round(["north", "south"])
        assert await b.begin_round(["north", "south"]) == round_no
        token, _ = await a.claim(round_no, "north")
        assert token > 0
        held, left = await b.claim(round_no, "north")
        assert held == 0 and 0 < left <= 5  # one holder at a time
        assert await a.renew("north", token)
        assert await a.finish(round_no, "north", token)
        assert (await b.claim(round_no, "north"))[0] == -1  # done for this round
