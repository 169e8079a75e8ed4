"""Fixtures for the command line tests (helpers live in ``clitools``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from clitools import KEYS, EmulatorProcess, start_emulator, stop_emulator


@pytest.fixture(scope="module")
def emulator() -> Iterator[EmulatorProcess]:
    """An emulator in its own process, shared by a module's tests (each uses its own customer key)."""
    flags = ["--patients", "150", "--interval", "full=0.01", "--interval", "read_all=0.02"]
    for key, tier in KEYS.items():
        flags += ["--customer-key", f"{key}={tier}"]
    emu = start_emulator(*flags)
    try:
        yield emu
    finally:
        stop_emulator(emu)
