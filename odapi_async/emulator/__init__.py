"""A local Open Dental API server: spec-driven routes over a synthetic practice in SQLite.

See docs/emulator.md. Serving needs the ``emulator`` extra (starlette, uvicorn); the names are loaded on first
use, so the modules that only read the spec (``_catalog``, used by :mod:`odapi_async.openapi`) import
without it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from odapi_async.emulator._emulator import Emulator
    from odapi_async.emulator._server.faults import Faults

__all__ = ["Emulator", "Faults"]


def __getattr__(name: str) -> Any:
    if name == "Emulator":
        from odapi_async.emulator._emulator import Emulator

        return Emulator
    if name == "Faults":
        from odapi_async.emulator._server.faults import Faults

        return Faults
    raise AttributeError(f"module 'odapi_async.emulator' has no attribute {name!r}")
