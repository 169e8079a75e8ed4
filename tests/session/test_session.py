"""The session object: configuration, views, the shared pool, the public surface."""

from __future__ import annotations

import contextlib

import httpx
import httpx2
import pytest

import odapi_async
from odapi_async import ConfigurationError, Hub, OpenDental
from support import BASE, CUST_KEY, DEV_KEY


def test_public_names() -> None:
    public = sorted(n for n in dir(odapi_async) if not n.startswith("_") or n == "__version__")
    public = [
        n
        for n in public
        if n not in {"resources"}
        and not n.islower()
        or n in {"default_hub", "redact_transport_logs", "__version__"}
    ]
    assert sorted(odapi_async.__all__) == odapi_async.__all__
    assert set(public) == set(odapi_async.__all__)


def test_keys_from_environment(monkeypatch) -> None:
    monkeypatch.setenv("ODAPI_DEVELOPER_KEY", DEV_KEY)
    monkeypatch.setenv("ODAPI_CUSTOMER_KEY", CUST_KEY)
    od = OpenDental()
    assert od._core.auth.reveal() == f"ODFHIR {DEV_KEY}/{CUST_KEY}"


def test_missing_key_is_a_configuration_error(monkeypatch) -> None:
    monkeypatch.delenv("ODAPI_DEVELOPER_KEY", raising=False)
    monkeypatch.delenv("ODAPI_CUSTOMER_KEY", raising=False)
    with pytest.raises(ConfigurationError, match="ODAPI_CUSTOMER_KEY"):
        OpenDental(developer_key="x")


@pytest.mark.parametrize(
    "kwargs",
    [
        {"modes": ("cloud",)},
        {"modes": ()},
        {"tier": "gold"},
        {"endpoints": {"cloud": "x"}},
        {"priority": "now"},
    ],
)
def test_bad_options(kwargs) -> None:
    with pytest.raises(ConfigurationError):
        OpenDental("d", "c", **kwargs)


def test_endpoints_and_modes() -> None:
    od = OpenDental("d", "c", service_host="10.0.0.5", modes=("service", "remote"))
    assert od.mode == "service"
    assert od._core.base_urls["service"] == "http://10.0.0.5:30223/api/v1"
    assert od._core.base_urls["local"] == "http://localhost:30222/api/v1"
    assert od._core.base_urls["remote"] == "https://api.opendental.com/api/v1"
    assert od._requests.page_cap() == 1000
    assert OpenDental("d", "c", modes=("remote",))._requests.page_cap() == 100
    assert OpenDental("d", "c", modes=("remote",), tier="enterprise")._requests.page_cap() == 1000
    assert OpenDental("d", "c", modes=("local",), tier="enterprise")._requests.page_cap() == 10_000


async def test_with_options_is_a_view_on_the_same_session(od, mock_api) -> None:
    route = mock_api.get("/patients/1").mock(return_value=httpx.Response(504))
    quick = od.with_options(max_retries=0, timeout=3.0, priority="interactive")
    assert quick._core is od._core and quick.patients is not od.patients
    assert quick.patients._requests is quick._requests
    with pytest.raises(odapi_async.GatewayTimeout):
        await quick.patients.get(1)
    assert route.call_count == 1
    assert od._requests.options.retry.max_retries == 2  # the original is unchanged


async def test_sessions_of_one_key_share_its_pool(mock_api) -> None:
    hub = Hub()
    mock_api.get("/patients/1").mock(return_value=httpx.Response(200, json={"PatNum": 1}))
    sessions = [
        OpenDental("d", f"k{i}", endpoints={"local": BASE}, modes=("local",), hub=hub) for i in range(3)
    ]
    twin = OpenDental("d", "k0", endpoints={"local": BASE}, modes=("local",), hub=hub)
    async with contextlib.AsyncExitStack() as stack:
        for od in [*sessions, twin]:
            await stack.enter_async_context(od)
        for od in [*sessions, twin]:
            await od.patients.get(1)
        clients = hub.pools.open_clients()
        assert len(clients) == 3  # one per key
        pool_of = {
            od.key_id: hub.pools.client(od.key_id, od._core.attempts, max_connections=8) for od in sessions
        }
        assert pool_of[sessions[0].key_id] is hub.pools.client(
            twin.key_id, twin._core.attempts, max_connections=8
        )
        assert pool_of[sessions[1].key_id] is not pool_of[sessions[0].key_id]
        async with sessions[0]:  # re-entering is counted: leaving the inner block does not close it
            pass
        assert not sessions[0].closed
        assert hub.pools.open_clients() == clients
    assert hub.pools.open_clients() == [] and all(
        c.is_closed for c in clients
    )  # the last one out closed them


async def test_escape_hatch_request(od, mock_api) -> None:
    route = mock_api.get("/patients/Simple").mock(return_value=httpx.Response(200, json=[{"PatNum": 1}]))
    got = await od.request("GET", "patients/Simple", params={"IsActive": True})
    assert got == [{"PatNum": 1}]
    assert route.calls.last.request.url.params["IsActive"] == "true"
    route = mock_api.post("/commlogs").mock(return_value=httpx.Response(504))
    with pytest.raises(odapi_async.OutcomeUnknown):  # a 504 to a write: it may have run
        await od.request("POST", "/commlogs", json={"PatNum": 1})
    assert route.call_count == 1  # POST not retried by default


async def test_pool_is_sized_from_the_in_flight_caps(od, mock_api) -> None:
    mock_api.get("/patients/1").mock(return_value=httpx.Response(200, json={"PatNum": 1}))
    await od.patients.get(1)
    pool = od._core.hub.pools.client(od.key_id, od._core, max_connections=0)._transport._pool
    assert pool._max_connections == 8  # local only: the local in-flight cap
    both = OpenDental("d", "c2", modes=("local", "remote"), endpoints={"local": BASE}, hub=od._core.hub)
    assert both._core.pool_size == 9


async def test_hub_transport_factory_serves_each_key() -> None:
    seen: list[int | None] = []

    def answer(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, json={"PatNum": int(request.url.path.rsplit("/", 1)[1])})

    def factory(max_connections: int | None) -> httpx2.AsyncBaseTransport:
        seen.append(max_connections)
        return httpx2.MockTransport(answer)

    hub = Hub(transport_factory=factory)
    async with OpenDental("d", "c", endpoints={"local": BASE}, modes=("local",), hub=hub) as od:
        assert (await od.patients.get(7)).PatNum == 7
        assert (await od.patients.get(8)).PatNum == 8
    assert seen == [8]  # one transport for the key, sized from its in-flight cap
