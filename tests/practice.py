"""The practice that the user-flow tests share (bounds and progress, frames, raw responses, the web examples).

Each such module declares its own emulator with these settings (one per module, as before)::

    emu = emulator_fixture(**PRACTICE)
"""

from __future__ import annotations

from typing import Any

from odapi_async import Hub, OpenDental
from odapi_async._settings import Mode
from odapi_async.emulator import Emulator

DEV = "dev-erg"
KEYS = {"cust-erg": "full", "cust-erg2": "full"}
INTERVAL = 0.02


PRACTICE: dict[str, Any] = {
    "seed": 3,
    "patients": 300,
    "developer_key": DEV,
    "customer_keys": KEYS,
    "intervals": {"full": INTERVAL},
    "fractional_retry_after": True,
}


def session(emu: Emulator, mode: Mode = "local", key: str = "cust-erg", **kw) -> OpenDental:
    return OpenDental(
        DEV,
        key,
        endpoints=emu.endpoints,
        modes=(mode,),
        tier="full",
        intervals={"full": INTERVAL},
        hub=kw.pop("hub", None) or Hub(),
        **kw,
    )


def served(emu: Emulator, mode: str) -> int:
    return emu.stats()["listeners"][mode]["requests"]
