"""examples/web_app.py (Starlette) and examples/fastapi_app.py (FastAPI) under a real uvicorn server, against the emulator: sessions from the lifespan, shared by
requests, and a client that disconnects mid-request cancelling the SDK call."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import httpx2
import pytest
import uvicorn
from emulators import emulator_fixture
from practice import DEV, INTERVAL, PRACTICE

from odapi_async import Hub

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples"))
import web_app  # noqa: E402

emu = emulator_fixture(**PRACTICE)

fastapi_app = pytest.importorskip("fastapi_app", reason="FastAPI is not installed")
APPS = pytest.mark.parametrize("example", [web_app, fastapi_app], ids=["starlette", "fastapi"])

pytestmark = [pytest.mark.integration]
module_loop = pytest.mark.asyncio(loop_scope="module")


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self):  # runs inside the test's loop: leave the signal handlers alone
        yield


@contextlib.asynccontextmanager
async def serve(app) -> AsyncIterator[str]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    sock.setblocking(False)
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on")
    server = _Server(config)
    task = asyncio.get_running_loop().create_task(server.serve(sockets=[sock]))
    with anyio.fail_after(10):
        while not server.started:
            assert not task.done(), task.result()
            await asyncio.sleep(0.005)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        await task
        sock.close()


def in_flight(od) -> int:
    stats = od.throttle_stats().get("local")
    return stats.in_flight if stats is not None else 0


async def until(condition, within: float) -> None:
    """Wait, bounded, for a condition on counters the SDK and the app expose (they have no event to await)."""
    with anyio.fail_after(within):
        while not condition():  # noqa: ASYNC110
            await asyncio.sleep(0.005)


def make_app(emu, example=web_app, **options):
    return example.create_app(
        DEV,
        {"north": "cust-erg", "south": "cust-erg2"},
        endpoints=emu.endpoints,
        modes=("local",),
        tier="full",
        intervals={"full": INTERVAL},
        hub=Hub(),
        **options,
    )


@APPS
@module_loop
async def test_requests_share_the_lifespans_sessions(emu, example) -> None:
    app = make_app(emu, example)
    async with serve(app) as url, httpx2.AsyncClient(base_url=url, trust_env=False) as client:
        health = (await client.get("/health")).json()
        assert set(health) == {"north", "south"} and health["north"]["key_id"] != health["south"]["key_id"]
        sessions = dict(app.state.sessions)
        answers = await asyncio.gather(*(client.get(f"/practices/north/patients/{n}") for n in range(1, 11)))
        assert [a.json()["PatNum"] for a in answers] == list(range(1, 11))
        appts = (await client.get("/practices/south/appointments", params={"max_rows": 25})).json()
        assert len(appts) == 25 and "AptNum" in appts[0]
        assert app.state.sessions == sessions  # the same sessions served every request
        assert sessions["north"].throttle_stats()["local"].requests >= 10
        assert all(od._requests.options.priority == "interactive" for od in sessions.values())
        assert (await client.get("/practices/north/patients/987654")).status_code == 404
        assert (await client.get("/practices/nowhere/patients/1")).status_code == 404
        assert (
            await client.get("/practices/south/appointments", params={"max_rows": "all"})
        ).status_code == 422
        bad_date = await client.get("/practices/south/appointments", params={"date": "yesterday"})
        assert (
            bad_date.status_code == 422 and "date" in bad_date.json()["error"]
        )  # InvalidParameter, no request
    assert all(od.closed for od in sessions.values())  # closed with the server's lifespan


@APPS
@module_loop
async def test_a_client_that_leaves_cancels_the_sdk_call(emu, example) -> None:
    app = make_app(emu, example)
    latency = 5.0
    async with serve(app) as url:
        od = app.state.sessions["north"]
        emu.set_faults("local", latency=latency)
        try:
            host, port = url.removeprefix("http://").split(":")
            reader, writer = await asyncio.open_connection(host, int(port))
            writer.write(b"GET /practices/north/patients/3 HTTP/1.1\r\nHost: x\r\n\r\n")
            await writer.drain()
            started = time.monotonic()
            # The SDK request is in flight at the (slow) emulator...
            await until(lambda: in_flight(od) == 1, within=5)
            writer.close()  # ...the browser goes away...
            await writer.wait_closed()
            # ...and the SDK call is cancelled, long before the emulator would answer.
            await until(lambda: app.state.disconnects == 1 and in_flight(od) == 0, within=3)
            assert time.monotonic() - started < latency
        finally:
            emu.set_faults("local", latency=0.0)
        async with httpx2.AsyncClient(base_url=url, trust_env=False) as client:  # the key serves on
            assert (await client.get("/practices/north/patients/4")).json()["PatNum"] == 4
