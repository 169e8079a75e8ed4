"""Against a hand-written misbehaving HTTP server over real sockets: every wait and read has a bound."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from odapi_async import APIStatusError, Hub, OpenDental, ResponseTooLarge, Timeout

pytestmark = pytest.mark.integration

Behaviour = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def _read_request(reader: asyncio.StreamReader) -> None:
    await reader.readuntil(b"\r\n\r\n")


@pytest.fixture
async def serve() -> AsyncIterator[Callable[[Behaviour], Awaitable[str]]]:
    servers: list[asyncio.base_events.Server] = []

    async def start(behaviour: Behaviour) -> str:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                await behaviour(reader, writer)
            except (ConnectionError, asyncio.IncompleteReadError):
                pass
            finally:
                writer.close()

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        servers.append(server)
        port = server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}/api/v1"

    yield start
    for server in servers:
        server.close()
        await server.wait_closed()


def session(base: str, mode: str = "local", **kw: object) -> OpenDental:
    # Remote (a spaced key) runs its exchange in a task of its own (``AttemptRunner.run``); Local inline.
    spaced = {"tier": "full", "intervals": {"full": 0.05}} if mode == "remote" else {}
    return OpenDental("dev", "cust", endpoints={mode: base}, modes=(mode,), hub=Hub(), **spaced, **kw)  # type: ignore[arg-type]


both_paths = pytest.mark.parametrize("mode", ["local", "remote"])


@both_paths
async def test_a_drip_fed_body_hits_the_total_deadline(serve, mode: str) -> None:
    async def drip(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n")
        for _ in range(100):  # one byte every 0.25 s: each read is quick, the whole is not
            writer.write(b" ")
            await writer.drain()
            await asyncio.sleep(0.25)

    base = await serve(drip)
    async with session(base, mode, timeout=1.0, max_retries=0) as od:
        started = time.monotonic()
        with pytest.raises(Timeout, match="within 1 s"):
            await od.request("GET", "/patients/1")
        assert time.monotonic() - started < 2.5


@both_paths
async def test_an_endless_body_stops_at_the_size_cap(serve, mode: str) -> None:
    async def endless(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        chunk = b"[" + b"1," * 32_000
        for _ in range(10_000):
            writer.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            await writer.drain()

    base = await serve(endless)
    async with session(base, mode, max_response_bytes=1_000_000, max_retries=0) as od:
        with pytest.raises(ResponseTooLarge) as err:
            await od.request("GET", "/patients")
    assert err.value.limit == 1_000_000 and err.value.received > 1_000_000


@both_paths
async def test_a_declared_length_past_the_cap_is_refused_before_reading(serve, mode: str) -> None:
    async def huge(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 999999999\r\n\r\n[")
        await writer.drain()
        await asyncio.sleep(5)

    base = await serve(huge)
    async with session(base, mode, max_response_bytes=1000, max_retries=0) as od:
        with pytest.raises(ResponseTooLarge):
            await asyncio.wait_for(od.request("GET", "/patients"), 3)


async def test_a_redirect_is_an_error_that_names_it(serve) -> None:
    async def redirect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        writer.write(b"HTTP/1.1 302 Found\r\nLocation: http://elsewhere.test/x\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()

    base = await serve(redirect)
    async with session(base) as od:
        with pytest.raises(APIStatusError) as err:
            await od.patients.get(1)
    assert err.value.status_code == 302 and "redirect to http://elsewhere.test/x" in str(err.value)
