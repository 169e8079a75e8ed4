"""A local Open Dental API server: spec-driven routes over a synthetic practice in SQLite.

See docs/emulator.md. Needs the ``emulator`` extra (starlette, uvicorn): without it, importing ``Emulator``
raises :class:`~odapi_async.MissingExtra` naming the extra (the names load on first use, so that
``python -m odapi_async.emulator`` can say so in one line too).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from odapi_async._util.optional import require_extra

if TYPE_CHECKING:
    from odapi_async.emulator._emulator import Emulator
    from odapi_async.emulator._server.faults import Faults

__all__ = ["Emulator", "Faults"]


def __getattr__(name: str) -> Any:
    if name == "Emulator":
        require_extra("emulator", "the emulator")
        from odapi_async.emulator._emulator import Emulator

        return Emulator
    if name == "Faults":
        from odapi_async.emulator._server.faults import Faults

        return Faults
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
