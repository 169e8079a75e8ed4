"""A forked child (a Celery or multiprocessing worker) starts with blank per-key state, not the parent's."""

from __future__ import annotations

import asyncio
import multiprocessing
import sys
import threading

import pytest

from odapi_async import Hub

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="no fork")


def _child(hub: Hub, answer: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    async def take() -> str:
        async with hub.throttle.slot("remote", "kid"):
            return "granted"

    try:
        answer.put(asyncio.run(asyncio.wait_for(take(), 2)))
    except Exception as exc:  # reported to the parent: a timeout here is the failure under test
        answer.put(type(exc).__name__)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # fork with threads: the very case under test
def test_a_child_forked_while_the_parent_has_a_request_in_flight_is_not_blocked() -> None:
    hub = Hub()
    held, release = threading.Event(), threading.Event()

    def parent_request() -> None:
        async def run() -> None:
            async with hub.throttle.slot("remote", "kid"):  # the parent's request is in flight...
                held.set()
                await asyncio.get_running_loop().run_in_executor(None, release.wait, 10)

        asyncio.run(run())

    thread = threading.Thread(target=parent_request)
    thread.start()
    try:
        assert held.wait(5)
        ctx = multiprocessing.get_context("fork")
        answer = ctx.Queue()
        child = ctx.Process(target=_child, args=(hub, answer))
        child.start()  # ...when the worker forks
        got = answer.get(timeout=20)
        child.join(10)
        assert got == "granted"  # the child's copy of "1 in flight" would have blocked it forever
    finally:
        release.set()
        thread.join(10)
