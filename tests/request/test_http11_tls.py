"""The lean HTTP/1.1 connection over TLS (the Remote API is HTTPS): the handshake with the hub's context, SNI, the
certificate checked against the host, and errors as httpx2's, against a real asyncio TLS server."""

from __future__ import annotations

import asyncio
import ssl
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import httpx2
import pytest

from odapi_async._request.http11 import LeanClient, LeanHTTP11Connection


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for ``localhost`` (and no other name)."""
    where = tmp_path_factory.mktemp("tls")
    cert, key = where / "cert.pem", where / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost",
            "-keyout", str(key), "-out", str(cert),
        ],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return cert, key


class Connections:
    """A server's open connections, so that a test ends them all before its loop closes (a stream left for the
    garbage collector after the loop warns in whichever later test collects it)."""

    def __init__(self) -> None:
        self.open: dict[asyncio.Task[object], asyncio.StreamWriter] = {}

    def track(self, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.open[task] = writer

    async def end(self, server: asyncio.Server) -> None:
        server.close()
        for task, writer in list(self.open.items()):
            writer.close()
            task.cancel()
        if self.open:  # a handshake that failed never reached the handler
            await asyncio.wait(list(self.open), timeout=5)
        await asyncio.wait_for(server.wait_closed(), 5)


@pytest.fixture
async def tls_server(certificate: tuple[Path, Path]) -> AsyncIterator[tuple[int, list[str | None]]]:
    """An HTTPS server answering every request ``hello``; yields its port and the SNI names it was sent."""
    cert, key = certificate
    names: list[str | None] = []
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    context.sni_callback = lambda sock, name, ctx: names.append(name)  # type: ignore[assignment,misc,func-returns-value]

    connections = Connections()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.track(writer)
        try:
            while True:
                await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello")
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError, TimeoutError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0, ssl=context)
    try:
        yield server.sockets[0].getsockname()[1], names
    finally:
        await connections.end(server)


def trusting(cert: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(cert))


async def test_https_with_a_trusted_certificate_is_answered_over_one_kept_alive_connection(
    tls_server: tuple[int, list[str | None]], certificate: tuple[Path, Path]
) -> None:
    port, names = tls_server
    async with LeanClient(verify=trusting(certificate[0]), timeout=5) as client:
        for _ in range(3):
            response = await client.get(f"https://localhost:{port}/x")
            assert response.status_code == 200 and response.content == b"hello"
        connections = client._transport._pool.connections  # type: ignore[attr-defined]
        assert [type(c) for c in connections] == [LeanHTTP11Connection]  # ours, not httpcore2's
    assert names == ["localhost"]  # one handshake, with SNI


async def test_an_untrusted_certificate_is_a_connect_error(tls_server: tuple[int, list[str | None]]) -> None:
    port, _ = tls_server
    async with LeanClient(timeout=5) as client:  # the system's CAs: a self-signed certificate is not trusted
        with pytest.raises(httpx2.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            await client.get(f"https://localhost:{port}/x")


async def test_a_certificate_for_another_name_is_a_connect_error(
    tls_server: tuple[int, list[str | None]], certificate: tuple[Path, Path]
) -> None:
    port, _ = tls_server
    async with LeanClient(verify=trusting(certificate[0]), timeout=5) as client:
        with pytest.raises(httpx2.ConnectError, match="(?i)mismatch|match"):
            await client.get(f"https://127.0.0.1:{port}/x")  # the certificate names localhost only


async def test_a_server_that_never_completes_the_handshake_is_a_connect_timeout() -> None:
    connections = Connections()

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.track(writer)
        await asyncio.sleep(5)  # never answers the handshake; ended by the test

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with LeanClient(timeout=httpx2.Timeout(5, connect=0.3)) as client:
            with pytest.raises(httpx2.ConnectTimeout):
                await asyncio.wait_for(client.get(f"https://localhost:{port}/x"), 5)
    finally:
        await connections.end(server)
