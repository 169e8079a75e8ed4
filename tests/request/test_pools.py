"""A session's life: closing one never closes a pool another session or a request in flight still uses."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from odapi_async import Hub, OpenDental, SessionClosed
from support import BASE, CUST_KEY, DEV_KEY


def session(hub: Hub, customer_key: str = CUST_KEY) -> OpenDental:
    return OpenDental(DEV_KEY, customer_key, endpoints={"local": BASE}, modes=("local",), hub=hub)


async def test_aclose_of_one_session_leaves_the_others_pools_open(mock_api) -> None:
    mock_api.get("/patients/1").mock(return_value=httpx.Response(200, json={"PatNum": 1}))
    hub = Hub()
    async with session(hub, "other-office") as other:
        await other.patients.get(1)
        twin = session(hub, "other-office")  # the same key, used without async with
        lone = session(hub)
        await twin.patients.get(1)
        await lone.patients.get(1)
        clients = hub.pools.open_clients()
        assert len(clients) == 2
        await lone.aclose()
        await twin.aclose()
        still = hub.pools.open_clients()
        assert len(still) == 1 and not still[0].is_closed  # other-office's pool: `other` still uses it
        assert (await other.patients.get(1)).PatNum == 1
    assert hub.pools.open_clients() == [] and all(c.is_closed for c in clients)


async def test_aclose_inside_async_with_closes_once(mock_api) -> None:
    hub = Hub()
    a, b = session(hub, "office-a"), session(hub, "office-b")
    async with b:
        async with a:
            await a.aclose()
            assert a.closed and not b.closed
        assert not b.closed  # leaving a's block after aclose() did not release anything of b's
    assert b.closed


async def test_a_closed_session_raises_session_closed(mock_api) -> None:
    route = mock_api.get("/patients/1").mock(return_value=httpx.Response(200, json={"PatNum": 1}))
    od = session(Hub())
    await od.aclose()
    with pytest.raises(SessionClosed, match="closed"):
        await od.patients.get(1)
    with pytest.raises(SessionClosed):
        async with od:
            pass
    assert route.call_count == 0 and "closed" in repr(od)
    await od.aclose()  # closing twice is fine


async def test_a_view_does_not_close_its_session(mock_api) -> None:
    mock_api.get("/patients/1").mock(return_value=httpx.Response(200, json={"PatNum": 1}))
    async with session(Hub()) as od:
        view = od.with_options(priority="interactive")
        async with view:
            await view.patients.get(1)
        await view.aclose()
        assert not od.closed and not view.closed
        assert (await od.patients.get(1)).PatNum == 1
    assert view.closed  # a view shares its session's life


async def test_closing_under_a_request_in_flight_lets_it_finish(mock_api) -> None:
    # The pool stays open for the request that uses it; the last request out closes it.
    gate, entered = asyncio.Event(), asyncio.Event()

    async def slow(request: httpx.Request) -> httpx.Response:
        entered.set()
        await gate.wait()
        return httpx.Response(200, json={"PatNum": 1})

    mock_api.get("/patients/1").mock(side_effect=slow)
    hub = Hub()
    od = session(hub)
    call = asyncio.create_task(od.patients.get(1))
    await asyncio.wait_for(entered.wait(), 5)
    client = hub.pools.open_clients()[0]
    await od.aclose()
    assert not client.is_closed  # still carrying the request
    gate.set()
    assert (await call).PatNum == 1
    assert client.is_closed and hub.pools.open_clients() == []
