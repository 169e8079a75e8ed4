"""The store's own thread: every call a sync makes to its :class:`SyncSink` runs there, one after the other.

A store is one connection behind one lock, so its calls run one at a time whatever thread makes them; a thread of
its own does the same work for less than a worker pool's hop (``anyio.to_thread.run_sync``: a checkpoint, a
capacity limiter, a cancel scope, a fresh worker's bookkeeping per call). Here a call is a job on a queue and an
asyncio future: the thread takes every job waiting when it wakes (the pages of many offices in one wake-up), runs
them in order, and hands their outcomes back to each job's event loop in one callback.

A task cancelled while its job is queued or running still waits for the job to end before the cancellation goes
on (as ``anyio.to_thread.run_sync`` does): a page is committed or rolled back, never in doubt, when a cancelled
run returns. The thread lives while a run uses the store (:func:`store_writer`), and ends with the last one.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import queue
import threading
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import anyio

__all__ = ["StoreWriter", "store_writer"]

T = TypeVar("T")

#: Jobs run before their outcomes go back to the loop, at most: a busy thread still answers every few pages.
_BATCH = 8


class _Job:
    __slots__ = ("args", "call", "error", "finished", "future", "kwargs", "loop", "result", "waiter")

    def __init__(
        self,
        call: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self.call = call
        self.args = args
        self.kwargs = kwargs
        self.loop = loop
        self.future: asyncio.Future[Any] = loop.create_future()
        self.finished = False  # read and written on the job's loop only
        self.waiter: asyncio.Future[None] | None = None
        self.result: Any = None
        self.error: BaseException | None = None


class StoreWriter:
    """A thread running one store's calls in order, for any event loop (see the module's docstring)."""

    def __init__(self, name: str) -> None:
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._work, name=name, daemon=False)
        self._thread.start()

    async def call(self, call: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """``call(*args, **kwargs)`` in the store's thread; its result or error. A cancelled caller waits for it
        to end, then the cancellation goes on."""
        job = _Job(call, args, kwargs, asyncio.get_running_loop())
        self._jobs.put(job)
        try:
            return await job.future  # type: ignore[no-any-return]
        except asyncio.CancelledError:
            if not job.finished:
                await _wait_shielded(job)
            raise

    def stop(self) -> None:
        """End the thread once the jobs queued before are done (it never waits here)."""
        self._jobs.put(None)

    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            done: list[_Job] = []
            while job is not None:
                try:
                    job.result = job.call(*job.args, **job.kwargs)
                except BaseException as exc:  # delivered to the caller, whatever it is
                    job.error = exc
                done.append(job)
                if len(done) >= _BATCH:
                    _deliver(done)
                    done = []
                try:
                    job = self._jobs.get_nowait()
                except queue.Empty:
                    break
            _deliver(done)
            if job is None:
                return


async def _wait_shielded(job: _Job) -> None:
    """Wait, past any cancellation, for a job whose caller was cancelled to end in the thread."""
    job.waiter = job.loop.create_future()
    with anyio.CancelScope(shield=True):
        while not job.finished:
            # A native cancel (not anyio's, which the shield holds off) interrupts the wait: wait on.
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.shield(job.waiter)


def _deliver(jobs: list[_Job]) -> None:
    """Hand finished jobs back to their loops (one callback per loop)."""
    if not jobs:
        return
    by_loop: dict[asyncio.AbstractEventLoop, list[_Job]] = {}
    for job in jobs:
        by_loop.setdefault(job.loop, []).append(job)
    for loop, mine in by_loop.items():
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits any more
            loop.call_soon_threadsafe(_settle, mine)


def _settle(jobs: list[_Job]) -> None:
    """On the jobs' loop: each caller gets its outcome (a cancelled caller's waiter is woken instead)."""
    for job in jobs:
        job.finished = True
        future = job.future
        if not future.done():
            if job.error is not None:
                future.set_exception(job.error)
            else:
                future.set_result(job.result)
        if job.waiter is not None and not job.waiter.done():
            job.waiter.set_result(None)
        job.call = job.args = job.kwargs = job.result = job.error = None  # type: ignore[assignment]


_lock = threading.Lock()
#: id(store) -> (the store, its writer, the runs using it, the process that started the thread).
_writers: dict[int, tuple[object, StoreWriter, int, int]] = {}


@contextlib.contextmanager
def store_writer(store: object) -> Iterator[StoreWriter]:
    """The writer of ``store`` while the block runs: one thread per store, shared by every run using it."""
    key = id(store)
    with _lock:
        entry = _writers.get(key)
        if (
            entry is None or entry[3] != os.getpid()
        ):  # none yet, or the parent's (a forked child has no threads)
            entry = (store, StoreWriter(f"odapi-store-{type(store).__name__}"), 0, os.getpid())
        _writers[key] = (store, entry[1], entry[2] + 1, entry[3])
    writer = entry[1]
    try:
        yield writer
    finally:
        with _lock:
            store_, writer_, users, pid = _writers[key]
            if users > 1:
                _writers[key] = (store_, writer_, users - 1, pid)
            else:
                del _writers[key]
                writer_.stop()
