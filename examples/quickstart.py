"""Quick start: run the SDK against the bundled emulator (no Open Dental server needed).

    python examples/quickstart.py

Starts an in-process emulator of the Open Dental API with a synthetic practice, then uses one session the way
an integration would: a typed GET, a streamed list, an incremental-sync query, a write and a documented action.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time

from odapi_async import OpenDental
from odapi_async.emulator import Emulator


async def main() -> None:
    started = time.perf_counter()
    async with Emulator(
        seed=1, patients=2000, developer_key="dev-demo", customer_keys={"cust-demo": "full"}
    ) as emu:
        print(f"emulator up in {time.perf_counter() - started:.1f} s: {emu.endpoints['local']}")
        async with OpenDental("dev-demo", "cust-demo", endpoints=emu.endpoints, modes=("local",)) as od:
            pat = await od.patients.get(1)
            print(f"patient 1: {pat.FName} {pat.LName}, born {pat.Birthdate}, status {pat.PatStatus}")

            t0 = time.perf_counter()
            count = 0
            statuses: dict[str, int] = {}
            async for appt in od.appointments.list():
                count += 1
                statuses[appt.AptStatus] = statuses.get(appt.AptStatus, 0) + 1
            took = time.perf_counter() - t0
            print(f"streamed {count} appointments in {took:.2f} s ({count / took:,.0f} rows/s): {statuses}")

            since = dt.datetime.now() - dt.timedelta(days=30)
            changed = await od.procedurelogs.list(DateTStamp=since).collect()
            watermark = changed[0].serverDateTime if changed else None
            print(f"{len(changed)} procedures changed in the last 30 days; next watermark {watermark}")

            note = await od.commlogs.create(PatNum=pat.PatNum, Note="Called about recall", Mode_="Phone")
            print(f"created commlog {note.CommlogNum} for patient {note.PatNum}")


if __name__ == "__main__":
    asyncio.run(main())
