"""A sync cancelled while its pages are in the store's thread ends with the file whole, and the next run ends
exact: the cancellation waits for the page under way (committed or rolled back, never half), every other page
the thread had queued is either committed whole or never written."""

from __future__ import annotations

import asyncio
import sqlite3
import threading

import pytest

from odapi_async import OpenDental
from odapi_async.sync import OfficeConfig, SyncStore, sync_offices, sync_specs

pytestmark = pytest.mark.integration

OFFICES = ("north", "south", "east")
RESOURCES = ["procedurelogs", "patients"]


class CancelAtPage(SyncStore):
    """Cancels the sync's task from the store's thread while its ``at``-th page is being written, and gives the
    cancellation time to end the task before the page does (which it must not)."""

    def __init__(self, path, at: int, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(path)
        self.at, self.loop, self.pages = at, loop, 0
        self.task: asyncio.Task[object] | None = None
        self.writing = False
        self.ended = threading.Event()
        self.ended_while_writing: bool | None = None

    def start(self, task: asyncio.Task[object]) -> None:
        self.task = task

        def ended(_: object) -> None:
            self.ended_while_writing = self.writing
            self.ended.set()

        task.add_done_callback(ended)

    def write_page(self, layout, office, rows, **kwargs) -> None:
        self.pages += 1
        self.writing = True
        try:
            if self.pages == self.at and self.task is not None:
                self.loop.call_soon_threadsafe(self.task.cancel)
                self.ended.wait(0.3)  # the task may not end now: this page is under way
            super().write_page(layout, office, rows, **kwargs)
        finally:
            self.writing = False


def _tables(db) -> dict[str, list[tuple[object, ...]]]:
    with sqlite3.connect(db) as conn:
        got = {t: conn.execute(f'SELECT * FROM "{t}" ORDER BY 1, 2').fetchall() for t in RESOURCES}
    conn.close()
    return got


@pytest.mark.parametrize("at", [1, 2, 5])
async def test_a_sync_cancelled_mid_page_leaves_whole_pages_and_the_next_run_ends_exact(
    od_emulator, tmp_path, at
) -> None:
    def session() -> OpenDental:
        return OpenDental("dev", "cust-full", modes=("local",), endpoints=od_emulator.endpoints)

    offices = [OfficeConfig(name, session) for name in OFFICES]
    specs = sync_specs(RESOURCES)
    with SyncStore(tmp_path / "reference.sqlite") as reference:
        done = await sync_offices(offices, reference, specs)
        assert not any(p.error for p in done)
    store = CancelAtPage(tmp_path / "cancelled.sqlite", at, asyncio.get_running_loop())
    try:
        store.start(asyncio.create_task(sync_offices(offices, store, specs)))
        assert store.task is not None
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(store.task, 60)
        assert store.pages >= at and store.ended_while_writing is False
        written = store.pages
        store.task = None
        again = await asyncio.wait_for(sync_offices(offices, store, specs), 60)
        assert not any(p.error or p.skipped for p in again)  # no claim left behind by the cancelled run
        assert store.pages > written
    finally:
        store.close()
    assert _tables(tmp_path / "cancelled.sqlite") == _tables(tmp_path / "reference.sqlite")
