"""A local Open Dental API server: spec-driven routes over a synthetic practice in SQLite.

See docs/emulator.md. Needs the ``emulator`` extra (starlette, uvicorn).
"""

from __future__ import annotations

from odapi_async.emulator._emulator import Emulator
from odapi_async.emulator._faults import Faults

__all__ = ["Emulator", "Faults"]
