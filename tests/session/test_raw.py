"""request(cast_to=...), with_raw_response, and the hub's transport options, against the emulator."""

from __future__ import annotations

import asyncio
import contextlib

import httpx
import httpx2
import pytest
from emulators import emulator_fixture
from practice import PRACTICE, session

from odapi_async import ConfigurationError, DecodeError, Hub, NotFound
from odapi_async.resources._generated.patients import Patient

emu = emulator_fixture(**PRACTICE)

pytestmark = [pytest.mark.integration]
module_loop = pytest.mark.asyncio(loop_scope="module")


@module_loop
async def test_cast_to_a_model_and_a_list_of_it(emu) -> None:
    async with session(emu) as od:
        one = await od.request("GET", "/patients/1", cast_to=Patient)
        many = await od.request("GET", "/patients", params={"Limit": 5}, cast_to=list[Patient])
        plain = await od.request("GET", "/patients/1")
        counts = await od.request("GET", "/patients", params={"Limit": 2}, cast_to=list[dict[str, object]])
    assert isinstance(one, Patient) and one.PatNum == 1 and one.LName == plain["LName"]
    assert len(many) == 5 and all(isinstance(p, Patient) for p in many)
    assert counts[0]["PatNum"] == 1
    # The model's wire rules hold: the API's zero date is None, a date is a date.
    assert one.Birthdate is None or one.Birthdate.year > 1


@module_loop
async def test_cast_to_a_misfit_raises_decode_error(emu) -> None:
    async with session(emu) as od:
        with pytest.raises(DecodeError) as err:
            await od.request("GET", "/patients", params={"Limit": 2}, cast_to=Patient)  # two rows, not one
    assert err.value.path == "/patients" and err.value.mode == "local"


@module_loop
async def test_raw_response_carries_status_headers_and_body(emu) -> None:
    async with session(emu) as od:
        raw = await od.with_raw_response.request("GET", "/patients/1")
        assert raw.status_code == 200 and raw.mode == "local" and raw.method == "GET"
        assert raw.headers["content-type"].startswith("application/json")
        assert raw.json()["PatNum"] == 1 and raw.parse(Patient).PatNum == 1
        assert repr(raw).startswith("<RawResponse 200 GET /patients/1 [local]") and "LName" not in repr(raw)
        with pytest.raises(NotFound) as err:
            await od.with_raw_response.request("GET", "/patients/987654321")
    # An error status carries the answer's status, headers and text.
    assert err.value.status_code == 404 and "987654321" in err.value.explanation
    assert err.value.headers["content-type"].startswith("text/plain")


class ForwardProxy:
    """A minimal HTTP forward proxy (absolute-form requests), counting what passes through it."""

    def __init__(self) -> None:
        self.targets: list[str] = []
        self.server: asyncio.base_events.Server | None = None

    async def __aenter__(self) -> str:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self.server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    async def __aexit__(self, *exc) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with httpx2.AsyncClient(trust_env=False) as upstream:
                while True:
                    head = await reader.readuntil(b"\r\n\r\n")
                    lines = head.decode("latin-1").split("\r\n")
                    method, target, _ = lines[0].split(" ")
                    headers = [tuple(line.split(": ", 1)) for line in lines[1:] if line]
                    length = int(dict((k.lower(), v) for k, v in headers).get("content-length", 0))
                    body = await reader.readexactly(length) if length else b""
                    self.targets.append(target)
                    sent = [
                        (k, v)
                        for k, v in headers
                        if k.lower() not in ("host", "connection", "proxy-connection")
                    ]
                    answer = await upstream.request(method, target, headers=sent, content=body)
                    out = [f"HTTP/1.1 {answer.status_code} OK"]
                    out += [
                        f"{k}: {v}"
                        for k, v in answer.headers.items()
                        if k.lower() not in ("transfer-encoding", "content-length", "connection")
                    ]
                    out += [f"content-length: {len(answer.content)}", "", ""]
                    writer.write("\r\n".join(out).encode("latin-1") + answer.content)
                    await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()


@module_loop
async def test_requests_go_through_the_hubs_proxy(emu) -> None:
    proxy = ForwardProxy()
    async with proxy as url:
        async with session(emu, hub=Hub(proxy=url)) as od:
            rows = await od.patients.list().collect(max_rows=3)
            await od.request("GET", "/patients/2")
    assert len(rows) == 3
    local = emu.endpoints["local"]
    assert proxy.targets[0].startswith(local + "/patients?") and proxy.targets[1] == local + "/patients/2"


@module_loop
async def test_trust_env_false_ignores_proxy_variables(emu, monkeypatch) -> None:
    dead = "http://127.0.0.1:9"  # the discard port: nothing listens
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", dead)
    monkeypatch.setenv("ALL_PROXY", dead)
    async with session(emu, hub=Hub(trust_env=False), max_retries=0) as od:
        assert (await od.request("GET", "/patients/1"))["PatNum"] == 1
    async with session(emu, hub=Hub(), max_retries=0, failback_interval=0) as od:
        with pytest.raises(Exception) as err:  # the environment's proxy is used by default, as in httpx
            await od.request("GET", "/patients/1")
    assert "ConnectError" in type(err.value).__name__ or "connect" in str(err.value).lower()


def test_transport_options_are_checked_at_construction(tmp_path) -> None:
    with pytest.raises(ConfigurationError, match="TLS"):
        Hub(verify=str(tmp_path / "no-such-bundle.pem"))
    with pytest.raises(ConfigurationError, match="transport_factory"):
        Hub(proxy="http://proxy:3128", transport_factory=lambda n: httpx2.AsyncHTTPTransport())
    with pytest.raises(ConfigurationError, match="limits"):
        Hub(limits={"max_connections": 3})  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="verify"):
        Hub(verify=1)  # type: ignore[arg-type]
    Hub(verify=False)  # no verification: an SSL context that checks nothing


@module_loop
async def test_limits_cap_each_keys_pool(emu) -> None:
    hub = Hub(limits=httpx2.Limits(max_connections=2, keepalive_expiry=1.0))
    async with session(emu, hub=hub) as od:
        await asyncio.gather(*(od.request("GET", f"/patients/{n}") for n in range(1, 9)))
        (client,) = hub.pools.open_clients()
        pool = client._transport._pool  # type: ignore[attr-defined]  # httpcore2's pool behind the transport
        assert pool._max_connections == 2 and pool._keepalive_expiry == 1.0
        assert len(pool.connections) <= 2


async def test_error_headers_never_carry_a_key(od, mock_api) -> None:
    from odapi_async import BadRequest
    from support import CUST_KEY, DEV_KEY

    echo = f"ODFHIR {DEV_KEY}/{CUST_KEY}"
    mock_api.get("/patients/1").mock(
        return_value=httpx.Response(400, text="no", headers={"X-Echo": echo, "X-Request-Id": "r-1"})
    )
    with pytest.raises(BadRequest) as err:
        await od.patients.get(1)
    assert err.value.headers["x-request-id"] == "r-1"
    assert DEV_KEY not in str(err.value.headers) and CUST_KEY not in err.value.headers["x-echo"]
