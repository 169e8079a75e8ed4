"""The lean HTTP/1.1 connection (``_request/http11.py``) against real asyncio socket servers that misbehave."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx2
import pytest

from odapi_async._request.http11 import LeanClient

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class Server:
    """A raw TCP server; counts connections and requests heads it read."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.connections = 0
        self.requests = 0
        self.server: asyncio.Server | None = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            await self.handler(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def head(self, reader: asyncio.StreamReader) -> bytes:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        self.requests += 1
        return head

    @property
    def url(self) -> str:
        assert self.server is not None
        port = self.server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}/x"


@pytest.fixture
async def serve() -> AsyncIterator[Callable[[Handler], Awaitable[Server]]]:
    servers: list[Server] = []

    async def start(handler: Handler) -> Server:
        server = Server(handler)
        server.server = await asyncio.start_server(server._serve, "127.0.0.1", 0)
        servers.append(server)
        return server

    yield start
    for server in servers:
        assert server.server is not None
        server.server.close()


def client(**kwargs: object) -> LeanClient:
    return LeanClient(timeout=5, **kwargs)  # type: ignore[arg-type]


async def test_content_length_and_keep_alive_reuse(serve: Callable[[Handler], Awaitable[Server]]) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        srv = server
        while True:
            await srv.head(reader)
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello")
            await writer.drain()

    server = await serve(handler)
    async with client() as c:
        for _ in range(3):
            response = await c.get(server.url)
            assert response.content == b"hello"
    assert server.requests == 3
    assert server.connections == 1


async def test_chunked_with_extensions_and_trailers(serve: Callable[[Handler], Awaitable[Server]]) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await server.head(reader)
        writer.write(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"3;ext=1\r\nabc\r\n4\r\ndefg\r\n0\r\nX-Trailer: yes\r\n\r\n"
        )
        await writer.drain()
        await reader.read()

    server = await serve(handler)
    async with client() as c:
        response = await c.get(server.url)
    assert response.content == b"abcdefg"


async def test_body_delimited_by_close(serve: Callable[[Handler], Awaitable[Server]]) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await server.head(reader)
        writer.write(b"HTTP/1.1 200 OK\r\n\r\nuntil the end")
        await writer.drain()

    server = await serve(handler)
    async with client() as c:
        assert (await c.get(server.url)).content == b"until the end"
        assert (await c.get(server.url)).content == b"until the end"
    assert server.connections == 2  # a close-delimited body ends its connection


async def test_connection_close_then_new_connection(serve: Callable[[Handler], Awaitable[Server]]) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await server.head(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok")
        await writer.drain()

    server = await serve(handler)
    async with client() as c:
        for _ in range(2):
            assert (await c.get(server.url)).content == b"ok"
    assert server.connections == 2


async def test_server_closing_idle_connection_is_not_a_failure(
    serve: Callable[[Handler], Awaitable[Server]],
) -> None:
    closed = asyncio.Event()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await server.head(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        await writer.drain()
        if server.connections == 1:
            writer.close()  # idle keep-alive connection closed by the server
            await writer.wait_closed()
            closed.set()
            return
        while True:
            await server.head(reader)
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            await writer.drain()

    server = await serve(handler)
    async with client() as c:
        assert (await c.get(server.url)).content == b"ok"
        await asyncio.wait_for(closed.wait(), 5)
        for _ in range(20):  # let the client's loop see the close
            await asyncio.sleep(0)
        response = await c.post(server.url, content=b"once")
        assert response.content == b"ok"
    assert server.requests == 2  # the POST reached the server exactly once
    assert server.connections == 2


async def test_response_cut_short_is_an_error_and_not_reused(
    serve: Callable[[Handler], Awaitable[Server]],
) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await server.head(reader)
        if server.connections == 1:
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
            await writer.drain()
            return
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        await writer.drain()
        await reader.read()

    server = await serve(handler)
    async with client() as c:
        with pytest.raises(httpx2.RemoteProtocolError):
            await c.get(server.url)
        assert (await c.get(server.url)).content == b"ok"
    assert server.connections == 2


@pytest.mark.parametrize(
    "head",
    [b"HTTX/1.1 200 OK\r\n\r\n", b"HTTP/1.1 2000 OK\r\n\r\n", b"HTTP/1.1 200 OK\r\nBad Header\r\n\r\n"],
)
async def test_malformed_head_is_a_protocol_error(
    serve: Callable[[Handler], Awaitable[Server]], head: bytes
) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await server.head(reader)
        writer.write(head)
        await writer.drain()
        await reader.read()

    server = await serve(handler)
    async with client() as c:
        with pytest.raises(httpx2.RemoteProtocolError):
            await c.get(server.url)


async def test_oversized_head_is_refused(serve: Callable[[Handler], Awaitable[Server]]) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await server.head(reader)
        writer.write(b"HTTP/1.1 200 OK\r\n" + b"X-Big: " + b"a" * 200_000 + b"\r\n\r\n")
        await writer.drain()
        await reader.read()

    server = await serve(handler)
    async with client() as c:
        with pytest.raises(httpx2.RemoteProtocolError):
            await c.get(server.url)


async def test_informational_skipped_and_no_body_statuses(
    serve: Callable[[Handler], Awaitable[Server]],
) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await server.head(reader)
        writer.write(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\na")
        head = await server.head(reader)
        assert head.startswith(b"HEAD")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n")
        await server.head(reader)
        writer.write(b"HTTP/1.1 204 No Content\r\n\r\n")
        await server.head(reader)
        writer.write(b"HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n")
        await server.head(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nlast")
        await writer.drain()
        await reader.read()

    server = await serve(handler)
    async with client() as c:
        assert (await c.get(server.url)).content == b"a"
        assert (await c.head(server.url)).content == b""
        assert (await c.get(server.url)).status_code == 204
        assert (await c.get(server.url)).status_code == 304
        assert (await c.get(server.url)).content == b"last"
    assert server.connections == 1


async def test_request_body_sent(serve: Callable[[Handler], Awaitable[Server]]) -> None:
    got: list[bytes] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await server.head(reader)
        length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
        got.append(await reader.readexactly(length))
        writer.write(b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()
        await reader.read()

    server = await serve(handler)
    async with client() as c:
        assert (await c.put(server.url, content=b'{"a": 1}')).status_code == 201
    assert got == [b'{"a": 1}']


async def test_read_timeout(serve: Callable[[Handler], Awaitable[Server]]) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await server.head(reader)
        await reader.read()  # never answers

    server = await serve(handler)
    async with LeanClient(timeout=httpx2.Timeout(5, read=0.2)) as c:
        with pytest.raises(httpx2.ReadTimeout):
            await c.get(server.url)


async def test_cancelled_mid_response_then_next_request_exact(
    serve: Callable[[Handler], Awaitable[Server]],
) -> None:
    half = asyncio.Event()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await server.head(reader)
        if server.connections == 1:
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
            await writer.drain()
            half.set()
            await reader.read()
            return
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nnext")
        await writer.drain()
        await reader.read()

    server = await serve(handler)
    async with client() as c:
        task = asyncio.ensure_future(c.get(server.url))
        await asyncio.wait_for(half.wait(), 5)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert (await c.get(server.url)).content == b"next"
    assert server.connections == 2


async def test_many_concurrent_requests_on_one_pool(serve: Callable[[Handler], Awaitable[Server]]) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            head = await server.head(reader)
            path = head.split(b" ")[1]
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(path), path))
            await writer.drain()

    server = await serve(handler)
    async with LeanClient(timeout=5, limits=httpx2.Limits(max_connections=5)) as c:
        base = server.url.rsplit("/", 1)[0]
        answers = await asyncio.gather(*(c.get(f"{base}/{i}") for i in range(100)))
    assert [a.content for a in answers] == [f"/{i}".encode() for i in range(100)]
    assert server.connections <= 5


def test_a_pool_with_options_our_connection_lacks_makes_httpcore2s_own() -> None:
    import httpcore2

    from odapi_async._request.http11 import LeanConnectionPool, LeanHTTP11Connection, _plain

    origin = httpcore2.Origin(b"http", b"127.0.0.1", 80)
    assert isinstance(LeanConnectionPool().create_connection(origin), LeanHTTP11Connection)
    assert not isinstance(LeanConnectionPool(retries=2).create_connection(origin), LeanHTTP11Connection)
    assert not isinstance(
        LeanConnectionPool(local_address="127.0.0.1").create_connection(origin), LeanHTTP11Connection
    )

    class Unknown:  # an httpcore2 whose pool keeps its settings under other names
        _proxy = None

    assert _plain(Unknown()) is False  # type: ignore[arg-type]
