"""Optional dependencies: each feature that needs one says, in one line, which extra to install.

The base install (``pip install odapi-async``) is the SDK alone. The command line, the emulator, DataFrames,
the Redis throttle and the rest need an extra; using one without it raises :class:`MissingExtra` (an
``ImportError``) whose message names the feature, the missing module and the command that installs it, instead
of a traceback ending in ``No module named ...``.
"""

from __future__ import annotations

import importlib
import sys
from types import ModuleType

__all__ = ["EXTRAS", "MissingExtra", "require", "require_extra"]

#: The modules each extra brings that the package imports (the extras' names are pyproject.toml's).
EXTRAS: dict[str, tuple[str, ...]] = {
    "cli": ("click", "rich", *(("tomli",) if sys.version_info < (3, 11) else ())),
    "emulator": ("starlette", "uvicorn"),
    "polars": ("polars",),
    "pandas": ("pandas",),
    "redis": ("redis",),
    "postgres": ("psycopg",),
    "events": ("uvicorn",),
}


class MissingExtra(ImportError):
    """A feature was used without the extra it needs; the message says what to install."""

    def __init__(self, feature: str, extra: str, module: str) -> None:
        super().__init__(
            f"{feature} needs the '{extra}' extra ({module} is not installed): "
            f"pip install 'odapi-async[{extra}]'",
            name=module,
        )
        self.feature = feature
        self.extra = extra


def require(module: str, extra: str, feature: str) -> ModuleType:
    """Import ``module``, or raise :class:`MissingExtra` naming ``extra`` and ``feature``."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        missing = exc.name or module  # a module the dependency itself needs may be the one missing
        raise MissingExtra(feature, extra, missing.partition(".")[0]) from None


def require_extra(extra: str, feature: str) -> None:
    """Check that every module of ``extra`` imports (see :data:`EXTRAS`)."""
    for module in EXTRAS[extra]:
        require(module, extra, feature)
