"""API Events: how fast the receiver takes calls in, and how long a change takes to reach a handler.

1. Receiver throughput: 1000-row calls of the docs' appointment row (distinct AptNum) through
   ``EventReceiver.handle`` (auth, decode into ``Appointment``, dedupe key, queue), for the memory and the
   SQLite store: events/s answered, and events/s through to a (no-op) handler and acknowledged; then the same
   calls again (all duplicates). Best of 3.
2. End to end: the emulator (in-process) fires a subscription every PollingSeconds (scaled by ``poll_unit``)
   to the receiver's ASGI app under uvicorn on loopback; an appointment is changed through the SDK and the
   time from the change's answer to the handler's call is measured. Its floor is the polling period.

Prints one JSON line and a one-line summary.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import anyio  # noqa: E402
import uvicorn  # noqa: E402

from odapi_async import Hub, OpenDental  # noqa: E402
from odapi_async.emulator import Emulator  # noqa: E402
from odapi_async.events import Event, EventReceiver, MemoryEventStore, SQLiteEventStore  # noqa: E402

KEY = "bench-customer-key"
HEADERS = {"Authorization": KEY, "Workstation": "BENCH", "Event-Type": "WatchTable: Appointment"}


def example_row() -> dict[str, Any]:
    """The row of the docs' Database Event example (apievents.md)."""
    return {
        "AptNum": 18, "PatNum": 17, "AptStatus": "Scheduled", "Pattern": "//XXXX//", "Confirmed": 19,
        "confirmed": "Not Called", "TimeLocked": "false", "Op": 3, "Note": "", "ProvNum": 1, "provAbbr": "DOC1",
        "ProvHyg": 0, "AptDateTime": "2020-07-31 08:30:00", "NextAptNum": 0, "UnschedStatus": 0,
        "unschedStatus": "", "IsNewPatient": "false", "ProcDescript": "Seal, Seal", "ClinicNum": 0,
        "IsHygiene": "false", "DateTStamp": "2021-05-03 08:30:12", "DateTimeArrived": "0001-01-01 00:00:00",
        "DateTimeSeated": "0001-01-01 00:00:00", "DateTimeDismissed": "0001-01-01 00:00:00", "InsPlan1": 3,
        "InsPlan2": 0, "DateTimeAskedToArrive": "0001-01-01 00:00:00", "colorOverride": "0,0,0",
        "AppointmentTypeNum": 0, "SecDateTEntry": "2020-07-04 09:12:05", "Priority": "Normal",
        "PatternSecondary": "XX////XX", "ItemOrderPlanned": 0,
    }  # fmt: skip


def calls(count: int, rows: int) -> list[bytes]:
    template = example_row()
    out = []
    for c in range(count):
        out.append(json.dumps([{**template, "AptNum": c * rows + i + 1} for i in range(rows)]).encode())
    return out


async def throughput(store_name: str, bodies: list[bytes], rows: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        store = (
            MemoryEventStore(max_keys=10_000_000, max_queued=10_000_000)
            if store_name == "memory"
            else SQLiteEventStore(Path(tmp) / "ev.db", max_queued=10_000_000)
        )
        receiver = EventReceiver([KEY], store=store)
        receiver.on("Appointment")(_noop)
        async with receiver:
            start = time.perf_counter()
            for body in bodies:
                status, _ = await receiver.handle(HEADERS, body)
                assert status == 200
            new = time.perf_counter() - start
            await receiver.join()  # every queued event through a (no-op) handler and acknowledged
            handled = time.perf_counter() - start
            start = time.perf_counter()
            for body in bodies:
                await receiver.handle(HEADERS, body)
            dup = time.perf_counter() - start
    total = len(bodies) * rows
    return {"new_per_s": total / new, "handled_per_s": total / handled, "duplicate_per_s": total / dup}


async def _noop(event: Event[Any]) -> None:
    return None


class _QuietServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self):  # type: ignore[no-untyped-def]
        yield


async def end_to_end(samples: int, poll_unit: float) -> dict[str, float]:
    handled: dict[int, float] = {}
    arrived = anyio.Event()
    receiver = EventReceiver([KEY])

    @receiver.on("Appointment")
    async def on_change(event: Event[Any]) -> None:
        nonlocal arrived
        handled.setdefault(event.row.AptNum * 1000 + len(event.row.Note), time.perf_counter())
        arrived.set()

    latencies = []
    async with Emulator(seed=1, patients=50, customer_keys={KEY: "full"}) as emu:
        emu.events.configure(poll_unit=poll_unit)
        server = _QuietServer(uvicorn.Config(receiver.asgi(), port=0, log_level="warning", lifespan="on"))
        task = asyncio.get_running_loop().create_task(server.serve())
        while not server.started:  # noqa: ASYNC110 (uvicorn has no "started" event to wait on)
            if task.done():
                task.result()
            await asyncio.sleep(0.005)
        port = server.servers[0].sockets[0].getsockname()[1]
        async with OpenDental("dev", KEY, endpoints=emu.endpoints, modes=("local",), hub=Hub()) as od:
            await od.subscriptions.create(
                EndPointUrl=f"http://127.0.0.1:{port}/",
                Workstation="",
                WatchTable="Appointment",
                PollingSeconds=1,
            )
            apt = (await od.appointments.list(Limit=1).first_page())[0].AptNum
            rng = random.Random(1)
            for i in range(1, samples + 1):
                await anyio.sleep(rng.uniform(0, poll_unit))  # changes at random points of the polling cycle
                arrived = anyio.Event()
                await od.appointments.update(apt, Note="x" * i)
                changed = time.perf_counter()
                with anyio.fail_after(10):
                    while apt * 1000 + i not in handled:
                        await arrived.wait()
                        arrived = anyio.Event()
                latencies.append(handled[apt * 1000 + i] - changed)
        server.should_exit = True
        await task
    latencies.sort()
    return {
        "polling_period_ms": poll_unit * 1000,
        "p50_ms": statistics.median(latencies) * 1000,
        "p95_ms": latencies[int(len(latencies) * 0.95) - 1] * 1000,
        "max_ms": latencies[-1] * 1000,
    }


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=20)
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--samples", type=int, default=40)
    parser.add_argument("--poll-unit", type=float, default=0.1, help="seconds per PollingSecond")
    args = parser.parse_args()
    bodies = calls(args.calls, args.rows)
    out: dict[str, Any] = {"bench": "events", "calls": args.calls, "rows_per_call": args.rows}
    for name in ("memory", "sqlite"):
        best: dict[str, float] = {}
        for _ in range(3):
            got = await throughput(name, bodies, args.rows)
            best = {k: max(v, best.get(k, 0.0)) for k, v in got.items()}
        out[name] = {k: round(v) for k, v in best.items()}
    out["end_to_end"] = {k: round(v, 1) for k, v in (await end_to_end(args.samples, args.poll_unit)).items()}
    print(json.dumps(out))
    e2e = out["end_to_end"]
    print(
        f"receiver: {out['memory']['new_per_s']:,} new events/s (memory), {out['sqlite']['new_per_s']:,} (SQLite); "
        f"through handlers {out['memory']['handled_per_s']:,}/s, {out['sqlite']['handled_per_s']:,}/s; "
        f"duplicates {out['memory']['duplicate_per_s']:,}/s; change → handler p50 {e2e['p50_ms']} ms, "
        f"p95 {e2e['p95_ms']} ms with a {e2e['polling_period_ms']:.0f} ms polling period"
    )


if __name__ == "__main__":
    asyncio.run(main())
