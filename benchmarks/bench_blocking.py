"""The blocking client's cost per call against the async session's, on the emulator's local listener.

The emulator runs in its own thread (its own loop). The same N sequential ``patients.get`` calls, best of R
rounds each way: async (in an ``asyncio.run`` loop) and blocking (``odapi_async.blocking``: each call handed to
the background loop and waited for). Prints one JSON line and a one-line summary: µs per call, and the
difference (the hand-off between threads).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from anyio.from_thread import start_blocking_portal  # noqa: E402

from odapi_async import Hub  # noqa: E402
from odapi_async import OpenDental as AsyncOpenDental  # noqa: E402
from odapi_async.blocking import OpenDental  # noqa: E402
from odapi_async.emulator import Emulator  # noqa: E402

CALLS = 400
ROUNDS = 5


def main() -> None:
    with start_blocking_portal() as portal:
        emu = Emulator(seed=1, patients=200, developer_key="dev", customer_keys={"cust": "full"})
        portal.call(emu.__aenter__)
        try:
            options = {"endpoints": emu.endpoints, "modes": ("local",)}

            async def async_round() -> float:
                async with AsyncOpenDental("dev", "cust", hub=Hub(), **options) as od:
                    await od.patients.get(1)  # warm the pool
                    start = time.perf_counter()
                    for i in range(CALLS):
                        await od.patients.get(1 + i % 200)
                    return time.perf_counter() - start

            def blocking_round() -> float:
                with OpenDental("dev", "cust", hub=Hub(), **options) as od:
                    od.patients.get(1)
                    start = time.perf_counter()
                    for i in range(CALLS):
                        od.patients.get(1 + i % 200)
                    return time.perf_counter() - start

            best_async = best_blocking = float("inf")
            for _ in range(ROUNDS):
                best_async = min(best_async, asyncio.run(async_round()))
                best_blocking = min(best_blocking, blocking_round())
        finally:
            portal.call(emu.__aexit__, None, None, None)
    a_us, b_us = best_async / CALLS * 1e6, best_blocking / CALLS * 1e6
    print(json.dumps({"benchmark": "blocking", "calls": CALLS, "async_us": a_us, "blocking_us": b_us}))
    print(
        f"blocking: async {a_us:.0f} µs/call, blocking {b_us:.0f} µs/call, hand-off {b_us - a_us:+.0f} µs/call"
    )


if __name__ == "__main__":
    main()
