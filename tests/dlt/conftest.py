"""The dlt source's tests: real dlt, its DuckDB destination, the emulator over real sockets."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

pytest.importorskip("dlt", reason="the dlt extra is not installed")
pytest.importorskip("duckdb", reason="dlt's DuckDB destination is not installed")

from dlttools import DEV, QUIET_DLT  # noqa: E402

from odapi_async.emulator import Emulator  # noqa: E402

os.environ.update(QUIET_DLT)  # before dlt reads its configuration

#: One customer key per test that counts requests, so that counts do not mix.
KEYS = {
    "k-north": "full",
    "k-south": "read_all",
    "k-change": "full",
    "k-kill-a": "full",
    "k-kill-b": "full",
}


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    """A small practice, served from a thread of its own; shared by a module's tests."""
    with Emulator(
        seed=3,
        patients=60,
        developer_key=DEV,
        customer_keys=KEYS,
        intervals={"full": 0.01, "read_all": 0.02},
    ).in_thread() as emu:
        yield emu
