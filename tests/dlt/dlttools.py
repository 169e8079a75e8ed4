"""Helpers for the dlt source's tests: offices files for the emulator, a pipeline run, the rows it loaded."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import duckdb
import msgspec

import odapi_async.resources
from odapi_async import OpenDental
from odapi_async.emulator import Emulator
from odapi_async.sync import SYNC, TableLayout

ROOT = Path(__file__).resolve().parents[2]
DEV = "dev-dlt"
DATASET = "od"
#: dlt reports usage over the network unless told not to; tests (and this machine) have no network.
QUIET_DLT = {"RUNTIME__DLTHUB_TELEMETRY": "false", "RUNTIME__LOG_LEVEL": "WARNING"}


def offices_file(
    path: Path, emu: Emulator, offices: dict[str, str], listener: str = "local", **extra: str
) -> Path:
    """An offices file naming ``offices`` (name → customer key) on one listener of ``emu``."""
    lines = [f'developer_key = "{DEV}"', "", "[defaults]", f'modes = ["{listener}"]']
    lines.append(f'endpoints = {{ {listener} = "{emu.endpoints[listener]}" }}')
    lines += [f"{k} = {v}" for k, v in extra.items()]
    for name, key in offices.items():
        lines += ["", f"[offices.{name}]", f'customer_key = "{key}"']
        if emu.customer_keys.get(key):
            lines.append(f'tier = "{emu.customer_keys[key]}"')
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def requests(emu: Emulator, key: str, listener: str = "local") -> int:
    entry = emu.stats()["keys"].get(Emulator.key_id(key), {})
    return int(entry.get("listeners", {}).get(listener, {}).get("requests", 0))


def arrivals(emu: Emulator, key: str, listener: str = "local") -> list[float]:
    """When the emulator received each request of ``key`` (its monotonic clock), oldest first."""
    entry = emu.stats()["keys"].get(Emulator.key_id(key), {})
    return list(entry.get("listeners", {}).get(listener, {}).get("arrivals", []))


def violations(emu: Emulator, key: str, listener: str) -> int:
    entry = emu.stats()["keys"].get(Emulator.key_id(key), {})
    return int(entry.get("listeners", {}).get(listener, {}).get("violations", 0))


def env() -> dict[str, str]:
    out = {k: v for k, v in os.environ.items() if not k.startswith(("ODAPI_", "RUNTIME__"))}
    out["PYTHONPATH"] = str(ROOT) + os.pathsep + out.get("PYTHONPATH", "")
    return {**out, **QUIET_DLT}


def odapi_sync(db: Path, offices: Path, resources: str) -> subprocess.CompletedProcess[str]:
    """``odapi sync`` itself, as a user runs it."""
    return subprocess.run(
        [sys.executable, "-m", "odapi_async.cli", "sync", "--db", str(db), "--offices", str(offices),
         "--resources", resources, "--quiet"],
        capture_output=True, text=True, timeout=120, env=env(),
    )  # fmt: skip


def _layout(resource: str) -> TableLayout:
    return TableLayout(SYNC[resource], getattr(odapi_async.resources, SYNC[resource].model))


def _json(text: str | None) -> str | None:
    return None if text is None else json.dumps(json.loads(text), separators=(",", ":"))


def store_columns(resource: str) -> list[str]:
    """The store's column names of ``resource``, ``office`` first (before dlt normalizes them)."""
    return ["office", *_layout(resource).columns]


def store_form(value: Any) -> Any:
    """A DuckDB value in the form the SQLite store keeps (see sync/_store.py)."""
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        assert value.tzinfo is None, "the office's wall clock has no zone"
        return value.isoformat(" ")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, bool):
        return int(value)
    return value


def sqlite_rows(db: Path, resource: str, office: str) -> set[tuple[Any, ...]]:
    import sqlite3

    layout = _layout(resource)
    cols = ", ".join(f'"{c}"' for c in ("office", *layout.columns))
    conn = sqlite3.connect(db)
    try:
        rows = conn.execute(f'SELECT {cols} FROM "{resource}" WHERE office = ?', (office,)).fetchall()
    finally:
        conn.close()
    return {canonical(resource, row) for row in rows}


def canonical(resource: str, row: tuple[Any, ...]) -> tuple[Any, ...]:
    """JSON columns compared as values, not as text (DuckDB and msgspec space them differently)."""
    layout = _layout(resource)
    model = getattr(odapi_async.resources, SYNC[resource].model)
    hints = {f.name: f.type for f in msgspec.structs.fields(model)}
    out = list(row)
    for i, name in enumerate(layout.field_names, 1):
        if "List" in repr(hints[name]) or "Dict" in repr(hints[name]):
            out[i] = _json(out[i])
    return tuple(out)


def duck_rows(path: Path, resource: str, office: str) -> set[tuple[Any, ...]]:
    """The rows the pipeline loaded for ``office``, in the SQLite store's form, by the normalized names."""
    from dlt.common.normalizers.naming.snake_case import NamingConvention

    cols = ", ".join(NamingConvention().normalize_path(c) for c in store_columns(resource))
    conn = duckdb.connect(str(path), read_only=True)
    try:
        rows = conn.execute(f"SELECT {cols} FROM {DATASET}.{resource} WHERE office = ?", [office]).fetchall()
    finally:
        conn.close()
    return {canonical(resource, tuple(store_form(v) for v in row)) for row in rows}


def office_rows(emu: Emulator, key: str, resource: str, office: str) -> set[tuple[Any, ...]]:
    """What the office lists now, through the SDK, in the store's form."""
    spec, layout = SYNC[resource], _layout(resource)

    async def fetch() -> list[Any]:
        async with OpenDental(DEV, key, modes=("local",), endpoints={"local": emu.endpoints["local"]}) as od:
            return await getattr(getattr(od, resource), spec.operation)().collect()

    return {canonical(resource, layout.values(office, row)) for row in asyncio.run(fetch())}
