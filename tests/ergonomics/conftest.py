"""A module-scoped emulator for the ergonomics tests (notebook flows, frames, escape hatch, web, blocking)."""

from __future__ import annotations

from emulators import emulator_fixture

from odapi_async import Hub, OpenDental
from odapi_async._settings import Mode
from odapi_async.emulator import Emulator

DEV = "dev-erg"
KEYS = {"cust-erg": "full", "cust-erg2": "full"}
INTERVAL = 0.02


emu = emulator_fixture(
    seed=3,
    patients=300,
    developer_key=DEV,
    customer_keys=KEYS,
    intervals={"full": INTERVAL},
    fractional_retry_after=True,
)


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
