"""The Remote throttle's arrival is when a request's first bytes were read, not when its handler got to run."""

from __future__ import annotations

import asyncio
import time
from urllib.parse import urlsplit

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]

DEV = "dev"  # the emulator fixture's developer key (tests/emulator/conftest.py)
SLOW_CLIENT = 0.3  # seconds between a request's first bytes and the rest (a slow sender, the test's input)


async def test_arrival_is_stamped_at_the_first_bytes(emu):
    url = urlsplit(emu.endpoints["remote"])
    kid = emu.key_id("cust-ent")
    head = f"GET {url.path}/patients?Limit=1 HTTP/1.1\r\n".encode()
    rest = (
        f"Host: {url.netloc}\r\nAuthorization: ODFHIR {DEV}/cust-ent\r\nContent-Type: application/json\r\n"
        "Connection: close\r\n\r\n"
    ).encode()
    reader, writer = await asyncio.wait_for(asyncio.open_connection(url.hostname, url.port), 10)
    try:
        first = time.monotonic()
        writer.write(head)
        await writer.drain()
        await asyncio.sleep(SLOW_CLIENT)
        rest_sent = time.monotonic()
        writer.write(rest)
        await writer.drain()
        status = await asyncio.wait_for(reader.readline(), 10)
        await asyncio.wait_for(reader.read(), 10)
    finally:
        writer.close()
    assert status.startswith(b"HTTP/1.1 200"), status
    arrival = emu.stats()["keys"][kid]["listeners"]["remote"]["arrivals"][-1]
    # stamped when the handler ran, it would be after rest_sent
    assert first <= arrival < rest_sent
