"""RedisEventStore against a real redis-server: several receivers share one dedupe index and one queue."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator

import anyio
import pytest
import pytest_asyncio
from test_receiver import DOC_ROW, HEADERS, KEY

from odapi_async.events import Event, EventReceiver, RedisEventStore

redis_asyncio = pytest.importorskip("redis.asyncio")
pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server is not installed"),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def redis_url() -> Iterator[str]:
    port = _free_port()
    proc = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        with socket.socket() as probe:
            for _ in range(500):  # bounded: up to ~5 s for the server to listen
                try:
                    probe.connect(("127.0.0.1", port))
                    break
                except OSError:
                    proc.poll()
                    if proc.returncode is not None:
                        raise RuntimeError("redis-server exited") from None
                    time.sleep(0.01)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest_asyncio.fixture
async def client(redis_url: str) -> AsyncIterator[object]:
    c = redis_asyncio.Redis.from_url(redis_url)
    try:
        yield c
    finally:
        await c.aclose()


def body(*apts: int) -> bytes:
    return json.dumps([{**DOC_ROW, "AptNum": n} for n in apts]).encode()


class Recorded(list):
    """Handled (receiver, AptNum) pairs; ``reached(n)`` waits until there are n."""

    def __init__(self) -> None:
        super().__init__()
        self.changed = anyio.Event()

    async def reached(self, n: int) -> None:
        with anyio.fail_after(10):
            while len(self) < n:
                await self.changed.wait()


def recorder(receiver: EventReceiver, out: Recorded) -> None:
    @receiver.on("Appointment")
    async def record(event: Event) -> None:
        out.append((id(receiver), event.row.AptNum))
        changed, out.changed = out.changed, anyio.Event()
        changed.set()


async def test_two_receivers_share_dedupe_and_queue(redis_url) -> None:
    got = Recorded()
    one = EventReceiver([KEY], store=RedisEventStore(redis_url))
    two = EventReceiver([KEY], store=RedisEventStore(redis_url))
    recorder(one, got)
    recorder(two, got)
    async with one, two:
        # two workstations deliver the same rows, one to each process behind the load balancer
        assert (await one.handle(HEADERS, body(*range(1, 41))))[1] == "OK: 40 new, 0 duplicate."
        assert (await two.handle({**HEADERS, "Workstation": "FRONT"}, body(*range(1, 41))))[1].startswith(
            "OK: 0 new"
        )
        assert (await two.handle(HEADERS, body(41)))[0] == 200
        await got.reached(41)
    assert sorted(n for _, n in got) == list(range(1, 42))  # each once, whichever process took it


async def test_events_of_a_dead_receiver_are_claimed_by_another(redis_url) -> None:
    stuck, started = anyio.Event(), anyio.Event()
    first = EventReceiver([KEY], store=RedisEventStore(redis_url, consumer="a"), drain_timeout=0)

    @first.on("Appointment")
    async def never(event: Event) -> None:
        started.set()
        await stuck.wait()

    async with first:
        await first.handle(HEADERS, body(1, 2))
        with anyio.fail_after(5):
            await started.wait()  # both were taken in one read; the first receiver then dies
    got = Recorded()
    second = EventReceiver([KEY], store=RedisEventStore(redis_url, consumer="b", claim_after=0.05))
    recorder(second, got)
    async with second:
        await got.reached(2)
        assert (await second.handle(HEADERS, body(1)))[1] == "OK: 0 new, 1 duplicate."
    assert sorted(n for _, n in got) == [1, 2]


async def test_full_shared_queue_refuses_the_whole_batch(redis_url, client) -> None:
    store = RedisEventStore(redis_url, max_queued=3, prefix="small")
    receiver = EventReceiver([KEY], store=store)
    release = anyio.Event()

    @receiver.on("Appointment")
    async def blocked(event: Event) -> None:
        await release.wait()

    async with receiver:
        assert (await receiver.handle(HEADERS, body(1, 2, 3)))[0] == 200
        assert (await receiver.handle(HEADERS, body(4, 5)))[0] == 503
        assert await client.exists(f"small:seen:{'0' * 32}") == 0
        release.set()
        with anyio.fail_after(10):
            await receiver.join()
        assert (await receiver.handle(HEADERS, body(4, 5)))[1] == "OK: 2 new, 0 duplicate."  # nothing kept
        with anyio.fail_after(10):
            await receiver.join()


async def test_join_returns_on_an_empty_shared_queue(redis_url) -> None:
    receiver = EventReceiver([KEY], store=RedisEventStore(redis_url))
    async with receiver:
        with anyio.fail_after(5):
            await receiver.join()


async def test_failed_events_are_kept_for_inspection(redis_url) -> None:
    store = RedisEventStore(redis_url)
    receiver = EventReceiver([KEY], store=store, retries=0)

    @receiver.on("Appointment")
    async def broken(event: Event) -> None:
        raise ValueError("no")

    async with receiver:
        await receiver.handle(HEADERS, body(7))
        with anyio.fail_after(10):
            await receiver.join()
        [failed] = await store.failed_events()
    assert failed.row.AptNum == 7


def _sent_bytes(info: dict) -> int:
    return int(info["total_net_output_bytes"])


async def test_failing_two_far_apart_events_reads_only_those_two(redis_url, client) -> None:
    """``failed()`` reads each failed event by its id: the backlog queued between them never travels."""
    import datetime as dt

    from odapi_async.events._batch import decode_call

    entries = decode_call(
        "WatchTable",
        "Appointment",
        body(*range(1, 2001)),
        office="o",
        workstation="w",
        received_at=dt.datetime(2024, 1, 2),
    )
    between = sum(len(e.row_json) for e in entries[1:-1])
    assert between > 500_000  # what a range from the first to the last would send
    store = RedisEventStore(redis_url, prefix="span")
    await store.open()
    try:
        assert await store.put(entries, enqueue=True, now=time.time()) == 2000
        taken = await store.take(2000)
        assert len(taken) == 2000
        first, last = taken[0], taken[-1]
        before = _sent_bytes(await client.info("stats"))
        await store.failed([first.seq, last.seq])
        after = _sent_bytes(await client.info("stats"))
        # The two events (about 1 KB) and one INFO answer; the span between them is half a megabyte.
        assert after - before < 20_000
        assert [e.row.AptNum for e in await store.failed_events()] == [1, 2000]
        assert await client.xlen("span:queue") == 1998  # the others are still queued, untouched
        await store.done([e.seq for e in taken[1:-1]])
        assert await client.xlen("span:queue") == 0
    finally:
        await store.close()
