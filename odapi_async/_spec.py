"""Locate and load the machine-readable API spec.

The repository's ``spec/opendental-api.json`` is the source of truth; wheels carry a copy as package data
(``odapi_async/_data/``). The SDK itself never reads the spec at run time (the generator bakes what it needs
into ``resources/_generated``); the emulator and the generator do.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

_PACKAGED = Path(__file__).parent / "_data" / "opendental-api.json"
_IN_REPO = Path(__file__).resolve().parent.parent / "spec" / "opendental-api.json"


def spec_path() -> Path:
    """Return the path of the spec file, preferring the packaged copy."""
    for candidate in (_PACKAGED, _IN_REPO):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError("opendental-api.json not found in the package or the repository's spec/ folder")


@functools.cache
def load_spec() -> dict[str, Any]:
    """Return the parsed spec (cached; treat it as read-only)."""
    with spec_path().open(encoding="utf-8") as fh:
        spec: dict[str, Any] = json.load(fh)
    return spec
