"""Fixtures of the sync tests that run ``odapi sync`` against an emulator in its own process."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from cli.clitools import EmulatorProcess, start_emulator, stop_emulator

#: Customer keys of this folder's emulator, one per test module that changes the office's data.
KEYS = {"k-overlap": "full", "k-reconcile": "full", "k-skip": "full", "k-errors": "full"}


@pytest.fixture(scope="module")
def slow_emulator() -> Iterator[EmulatorProcess]:
    """The issue's setting: 150 patients and 30 ms on every Local answer, so that runs of one file overlap."""
    flags = ["--patients", "150", "--interval", "full=0.01", "--fault", "local:latency=0.03"]
    for key, tier in KEYS.items():
        flags += ["--customer-key", f"{key}={tier}"]
    emu = start_emulator(*flags)
    try:
        yield emu
    finally:
        stop_emulator(emu)
