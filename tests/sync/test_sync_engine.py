"""The sync engine in-process against the emulator: a row changed while a run pages is not missed."""

from __future__ import annotations

import anyio.from_thread
import anyio.lowlevel
import pytest

from odapi_async import OpenDental
from odapi_async.sync import OfficeConfig, SyncStore, sync_office, sync_specs

pytestmark = pytest.mark.integration


class ChangeBehindTheRun(SyncStore):
    """After the run's second page is written, change a row of its first page (already passed) at the office."""

    def __init__(self, path, change) -> None:
        super().__init__(path)
        self.change = change
        self.pages = 0
        self.first_key: int | None = None
        self.token = anyio.lowlevel.current_token()  # the sync's loop (the store runs in its own thread)

    def write_page(self, layout, office, rows, **kwargs) -> None:
        super().write_page(layout, office, rows, **kwargs)
        self.pages += 1
        if self.pages == 1:
            self.first_key = rows[0].ProcNum
        if self.pages == 2:
            anyio.from_thread.run(self.change, self.first_key, token=self.token)


async def test_a_row_changed_behind_a_running_sync_comes_with_the_next_run(od_emulator, tmp_path) -> None:
    def session() -> OpenDental:
        return OpenDental("dev", "cust-full", modes=("local",), endpoints=od_emulator.endpoints)

    async def change(proc_num: int) -> None:
        async with session() as od:
            await od.procedurelogs.update(proc_num, ProcFee=4321.0)

    office = OfficeConfig("north", session)
    specs = sync_specs(["procedurelogs"])
    store = ChangeBehindTheRun(tmp_path / "s.sqlite", change)
    try:
        first = await sync_office(office, store, specs)
        assert first.pages >= 3 and first.results[0].how == "whole"
        key = store.first_key

        def fee() -> float:
            return store._conn.execute(
                "SELECT ProcFee FROM procedurelogs WHERE office = 'north' AND ProcNum = ?", (key,)
            ).fetchone()[0]

        assert fee() != 4321.0  # the run had passed that row when it changed
        store.pages = 99  # no more changes
        second = await sync_office(office, store, specs)
        assert second.results[0].how == "incremental" and 1 <= second.rows < first.rows
        assert fee() == 4321.0
    finally:
        store.close()


async def test_an_appointment_deleted_at_the_office_is_removed_through_the_deletion_log(
    od_emulator, tmp_path
) -> None:
    def session() -> OpenDental:
        return OpenDental("dev", "cust-full", modes=("local",), endpoints=od_emulator.endpoints)

    office, specs = OfficeConfig("north", session), sync_specs(["appointments"])
    with SyncStore(tmp_path / "s.sqlite") as store:
        first = await sync_office(office, store, specs)
        assert first.results[0].how == "whole" and store.count("appointments", "north") == first.rows
        # Deleted in the desktop program (the API has no DELETE for appointments): the row goes, a history
        # entry "Deleted" is written, and nothing the DateTStamp filter could see changes.
        gone = od_emulator.db.execute(
            "SELECT AptNum, PatNum FROM appointments ORDER BY AptNum LIMIT 1"
        ).fetchone()
        od_emulator.db.execute("DELETE FROM appointments WHERE AptNum = ?", (gone[0],))
        od_emulator.db.execute(
            "INSERT INTO histappointments (HistDateTStamp, HistApptAction, AptNum, PatNum) "
            "VALUES (datetime('now', 'localtime'), 'Deleted', ?, ?)",
            gone,
        )
        od_emulator.db.commit()
        before = od_emulator.stats()["listeners"]["local"]["requests"]
        second = await sync_office(office, store, specs)
        result = second.results[0]
        assert (result.how, result.rows, result.removed) == ("incremental", 0, 1)
        assert store.count("appointments", "north") == first.rows - 1
        # One request for the (empty) changes, one for the deletion log.
        assert od_emulator.stats()["listeners"]["local"]["requests"] - before == 2
