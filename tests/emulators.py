"""The tests' one emulator fixture factory, built on :func:`odapi_async.testing.make_emulator`.

A test module (or an area's conftest) declares its emulator in one line, with the settings it needs::

    emu = emulator_fixture(scope="module", seed=7, patients=2100, fractional_retry_after=True)

Settings not given are the pytest plugin's (seed 1, 200 patients, developer key ``dev``, customer keys
``cust-full`` and ``cust-ro``, Remote intervals 0.05 s and 0.25 s).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, Literal

import pytest
import pytest_asyncio

from odapi_async.emulator import Emulator
from odapi_async.testing import make_emulator

Scope = Literal["function", "module", "package", "session"]


def emulator_fixture(
    *,
    scope: Scope = "module",
    thread: bool = False,
    name: str = "emu",
    started: Callable[[Emulator], object] | None = None,
    **settings: Any,
) -> Any:
    """A fixture called ``name`` that yields a running ``make_emulator(**settings)``, one per ``scope``.

    ``thread=False`` serves it on the tests' event loop (the fixture's loop scope is ``scope``, so the tests
    that use it must run on that loop). ``thread=True`` serves it from a thread with a loop of its own, as a
    real server would: a busy client cannot delay the server's arrival stamps, and blocking tests can use it.
    ``started`` is called with the emulator once it serves (e.g. to configure its event firer).
    """
    if thread:

        def threaded() -> Iterator[Emulator]:
            with make_emulator(**settings).in_thread() as emu:
                if started is not None:
                    started(emu)
                yield emu

        return pytest.fixture(threaded, scope=scope, name=name)

    async def on_loop() -> AsyncIterator[Emulator]:
        async with make_emulator(**settings) as emu:
            if started is not None:
                started(emu)
            yield emu

    return pytest_asyncio.fixture(on_loop, scope=scope, loop_scope=scope, name=name)
