"""Helpers for the command line tests: an emulator in its own process, the CLI run as a subprocess."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2

import odapi_async.resources
from odapi_async import OpenDental
from odapi_async.sync import SYNC, TableLayout

ROOT = Path(__file__).resolve().parents[2]
DEV = "dev-cli"
#: Customer keys of the shared emulator (one per test that counts requests, so counts do not mix).
KEYS = {
    "k-changes": "full",
    "k-kill": "full",
    "k-a": "full",
    "k-b": "read_all",
    "k-get": "full",
    "k-events": "full",
}
STARTUP_SECONDS = 60


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ODAPI_")}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env["COLUMNS"] = "200"
    return env


@dataclass
class EmulatorProcess:
    process: subprocess.Popen[str]
    endpoints: dict[str, str]

    def stats(self) -> dict[str, Any]:
        return httpx2.get(
            self.endpoints["local"].rsplit("/api/v1", 1)[0] + "/_emulator/stats", timeout=10
        ).json()

    def requests(self, key: str, listener: str = "local") -> int:
        from odapi_async.emulator import Emulator

        entry = self.stats()["keys"].get(Emulator.key_id(key), {})
        return int(entry.get("listeners", {}).get(listener, {}).get("requests", 0))

    def session(self, key: str) -> OpenDental:
        return OpenDental(DEV, key, modes=("local",), endpoints={"local": self.endpoints["local"]})


def start_emulator(*flags: str) -> EmulatorProcess:
    cmd = [sys.executable, "-m", "odapi_async.emulator", "--print-endpoints-json", "--developer-key", DEV]
    cmd += ["--port-local", "0", "--port-service", "0", "--port-remote", "0", *flags]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env())
    assert proc.stdout is not None
    deadline = time.monotonic() + STARTUP_SECONDS
    line = proc.stdout.readline()  # the server prints its endpoints once it listens
    if not line or time.monotonic() > deadline:
        proc.kill()
        raise RuntimeError(f"emulator did not start: {proc.communicate(timeout=10)[1][-2000:]}")
    return EmulatorProcess(proc, json.loads(line))


def stop_emulator(emu: EmulatorProcess) -> None:
    emu.process.terminate()
    try:
        emu.process.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        emu.process.kill()
        emu.process.communicate(timeout=20)


def odapi(*args: str, timeout: float = 90, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """Run ``odapi ARGS`` (as ``python -m odapi_async.cli``) to completion."""
    return subprocess.run(
        [sys.executable, "-m", "odapi_async.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**_env(), **kwargs.pop("env", {})},
        **kwargs,
    )


def odapi_popen(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "odapi_async.cli", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
    )


def local_rows(db: Path, resource: str, office: str) -> set[tuple[Any, ...]]:
    layout = TableLayout(SYNC[resource], getattr(odapi_async.resources, SYNC[resource].model))
    cols = ", ".join(f'"{c}"' for c in ("office", *layout.columns))
    with sqlite3.connect(db) as conn:
        rows = conn.execute(f'SELECT {cols} FROM "{resource}" WHERE office = ?', (office,)).fetchall()
    conn.close()
    return set(rows)


def office_rows(emu: EmulatorProcess, key: str, resource: str, office: str) -> set[tuple[Any, ...]]:
    """What the office lists now, through the SDK, in the form the sync stores."""
    spec = SYNC[resource]
    layout = TableLayout(spec, getattr(odapi_async.resources, spec.model))

    async def fetch() -> list[Any]:
        async with emu.session(key) as od:
            return await getattr(getattr(od, resource), spec.operation)().collect()

    return {layout.values(office, row) for row in asyncio.run(fetch())}


def assert_equal(emu: EmulatorProcess, db: Path, key: str, office: str, resources: Sequence[str]) -> None:
    for resource in resources:
        want = office_rows(emu, key, resource, office)
        have = local_rows(db, resource, office)
        assert want, f"{resource}: the emulator lists no rows; the comparison would prove nothing"
        assert have == want, f"{resource}: {len(have - want)} extra or stale, {len(want - have)} missing"
