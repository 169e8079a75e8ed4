"""Fixtures for API Events: a real uvicorn server for a receiver's ASGI app, and an emulator that fires."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest_asyncio
import uvicorn
from emulators import emulator_fixture

from odapi_async import Hub, OpenDental
from odapi_async.emulator import Emulator

DEV = "dev-events"
KEY = "cust-events-key"
OTHER_KEY = "cust-other-key"


class _QuietServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self):  # leave the test process's signal handlers alone
        yield


def bind(port: int = 0) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(128)
    sock.setblocking(False)
    return sock


@contextlib.asynccontextmanager
async def serve(app: Any, port: int = 0) -> AsyncIterator[int]:
    """Run ``app`` under uvicorn on 127.0.0.1 (lifespan on) until the block ends; yield the port."""
    sock = bind(port)
    port = sock.getsockname()[1]
    server = _QuietServer(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on"))
    task = asyncio.get_running_loop().create_task(server.serve(sockets=[sock]))
    try:
        with anyio.fail_after(10):
            while not server.started:
                if task.done():
                    task.result()
                    raise RuntimeError("the server stopped during start-up")
                await asyncio.sleep(0.005)
        yield port
    finally:
        server.should_exit = True
        with anyio.fail_after(15):
            await task
        sock.close()


emu = emulator_fixture(
    scope="function",
    started=lambda e: e.events.configure(poll_unit=0.05),
    seed=3,
    patients=30,
    developer_key=DEV,
    customer_keys={KEY: "full", OTHER_KEY: "full"},
)


@pytest_asyncio.fixture
async def od(emu: Emulator) -> AsyncIterator[OpenDental]:
    async with OpenDental(DEV, KEY, endpoints=emu.endpoints, modes=("local",), hub=Hub()) as session:
        yield session
