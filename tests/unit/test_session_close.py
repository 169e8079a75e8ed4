"""aclose() on one session must not close the pool under other sessions of the loop."""

from __future__ import annotations

import httpx
import httpx2

from odapi_async import Hub, OpenDental
from support import BASE, CUST_KEY, DEV_KEY


def session(hub: Hub, customer_key: str = CUST_KEY) -> OpenDental:
    return OpenDental(DEV_KEY, customer_key, endpoints={"local": BASE}, modes=("local",), hub=hub)


async def test_aclose_of_one_session_leaves_the_others_pool_open(mock_api) -> None:
    mock_api.get("/patients/1").mock(return_value=httpx.Response(200, json={"PatNum": 1}))
    hub = Hub()
    async with session(hub, "other-office") as other:
        await other.patients.get(1)
        lone = session(hub)  # used without async with
        await lone.patients.get(1)
        await lone.aclose()
        assert hub.state().users == 1
        clients = _clients(hub)
        assert clients and not any(c.is_closed for c in clients)
    assert all(c.is_closed for c in clients)  # the last one out closed it


async def test_aclose_inside_async_with_counts_as_leaving_once(mock_api) -> None:
    hub = Hub()
    a, b = session(hub, "office-a"), session(hub, "office-b")
    async with b:
        async with a:
            await a.aclose()  # then __aexit__ must not leave a second time (that would be b's share)
            assert hub.state().users == 1
        assert hub.state().users == 1
    assert hub.state().users == 0


def _clients(hub: Hub) -> list[httpx2.AsyncClient]:
    state = hub.state()
    found = [v for v in vars(state).values() if isinstance(v, httpx2.AsyncClient)]
    for v in vars(state).values():
        if isinstance(v, dict):
            found += [c for c in v.values() if isinstance(c, httpx2.AsyncClient)]
        if isinstance(v, list):
            found += [c for c in v if isinstance(c, httpx2.AsyncClient)]
    return found
