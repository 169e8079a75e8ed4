"""``odapi``: the command line (needs the ``cli`` extra: click and rich).

``demo`` (the emulator and a sync, in one command), ``sync``, ``get``, ``probe``, ``emulator``. Exit codes: 0 ok,
1 failures reported, 2 usage errors. Errors are one line each; ``--debug`` shows the traceback.

This module imports nothing optional: from a plain install (no ``cli`` extra) the command prints one line
naming the extra and exits 2 instead of a traceback.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from odapi_async._util.optional import MissingExtra, require_extra

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``odapi`` script; returns the exit code."""
    try:
        require_extra("cli", "the odapi command")
    except MissingExtra as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    from odapi_async.cli._app import run

    return run(argv)
