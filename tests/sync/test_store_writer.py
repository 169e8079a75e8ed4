"""``sync/_writer.py``: the store's own thread runs every call of every run in order, for any event loop, and a
cancelled caller returns only once its call has ended (committed or rolled back, never in doubt)."""

from __future__ import annotations

import asyncio
import threading

import pytest

from odapi_async.sync._writer import store_writer

BOUND = 10.0  # seconds: every wait of these tests ends by then


def _writer_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("odapi-store-")]


class Recorder:
    """A stand-in store: records its calls; ``block`` holds a call in the thread until released."""

    def __init__(self) -> None:
        self.calls: list[object] = []
        self.entered = threading.Event()
        self.release = threading.Event()

    def note(self, value: object) -> object:
        self.calls.append(value)
        return value

    def block(self, value: object) -> object:
        self.entered.set()
        if not self.release.wait(BOUND):
            raise TimeoutError("never released")
        self.calls.append(value)
        return value

    def fail(self) -> None:
        raise LookupError("the store says no")


async def test_calls_run_in_order_in_one_thread_with_their_results_and_errors() -> None:
    store = Recorder()
    with store_writer(store) as writer:
        results = await asyncio.gather(*(writer.call(store.note, i) for i in range(50)))
        with pytest.raises(LookupError, match="the store says no"):
            await writer.call(store.fail)
        assert await writer.call(threading.get_ident) != threading.get_ident()
        assert await writer.call(threading.get_ident) == await writer.call(threading.get_ident)
    assert results == list(range(50)) and store.calls == list(range(50))


async def test_one_thread_per_store_shared_by_its_runs_and_gone_with_the_last() -> None:
    a, b = Recorder(), Recorder()
    with store_writer(a) as one, store_writer(a) as two, store_writer(b) as other:
        assert one is two and one is not other
        ours = {await one.call(threading.get_ident), await other.call(threading.get_ident)}
        assert await two.call(threading.get_ident) in ours and len(ours) == 2
        threads = [t for t in _writer_threads() if t.ident in ours]
        assert len(threads) == 2
    for thread in threads:
        thread.join(BOUND)
    assert not any(t.is_alive() for t in threads)


async def test_a_caller_cancelled_while_its_call_runs_returns_after_the_call_ended() -> None:
    store = Recorder()
    with store_writer(store) as writer:
        task = asyncio.create_task(writer.call(store.block, "page"))
        assert await asyncio.to_thread(store.entered.wait, BOUND)
        task.cancel()
        await asyncio.sleep(0.05)  # give the cancellation every chance to finish early
        assert not task.done()  # still waiting: the page is in the thread, neither committed nor rolled back
        store.release.set()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(task, BOUND)
        assert store.calls == ["page"]  # it ran to its end before the cancellation went on
        assert await writer.call(store.note, "next") == "next"  # and the writer goes on
    assert store.calls == ["page", "next"]


async def test_a_call_queued_behind_a_running_one_still_runs_when_its_caller_is_cancelled() -> None:
    store = Recorder()
    with store_writer(store) as writer:
        running = asyncio.create_task(writer.call(store.block, "first"))
        assert await asyncio.to_thread(store.entered.wait, BOUND)
        queued = asyncio.create_task(writer.call(store.note, "second"))
        await asyncio.sleep(0)
        queued.cancel()
        await asyncio.sleep(0.05)
        assert not queued.done() and store.calls == []
        store.release.set()
        assert await asyncio.wait_for(running, BOUND) == "first"
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(queued, BOUND)
    assert store.calls == ["first", "second"]  # in order; nothing skipped, nothing run twice


async def test_a_second_cancel_does_not_cut_the_wait_short() -> None:
    store = Recorder()
    with store_writer(store) as writer:
        task = asyncio.create_task(writer.call(store.block, "page"))
        assert await asyncio.to_thread(store.entered.wait, BOUND)
        for _ in range(3):
            task.cancel()
            await asyncio.sleep(0.02)
            assert not task.done()
        store.release.set()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(task, BOUND)
    assert store.calls == ["page"]


def test_runs_on_event_loops_of_several_threads_share_the_writer_and_each_gets_its_own_results() -> None:
    store = Recorder()
    got: dict[int, list[object]] = {}
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        async def main() -> None:
            with store_writer(store) as writer:
                got[n] = [await writer.call(store.note, (n, i)) for i in range(40)]

        try:
            asyncio.run(main())
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(BOUND)
    assert not errors and not any(t.is_alive() for t in threads)
    assert got == {n: [(n, i) for i in range(40)] for n in range(4)}
    calls = [c for c in store.calls if isinstance(c, tuple)]
    assert len(calls) == len(store.calls) == 160 and set(calls) == {
        (n, i) for n in range(4) for i in range(40)
    }
    for n in range(4):  # each loop's calls in its own order
        assert [c for c in calls if c[0] == n] == [(n, i) for i in range(40)]
