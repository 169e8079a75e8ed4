"""``ODAPI_LOG``: the SDK's log lines on stderr, switched on from the environment (no code change).

``ODAPI_LOG=debug`` (every request's method, path, mode and status; retries; failback probes), ``info`` (a
session changing a key's settings, a shared throttle answering again, a fleet's round) or ``warning`` (a
mode failing over, a refused tier) attaches one stderr handler to the ``odapi_async`` logger at that level,
when ``odapi_async`` is imported. The lines carry what the SDK logs anyway: method, URL path, mode, status and
a key's short id — never a key, never a query string or a body (patient data). The transport's own loggers
(httpx2, httpcore2) are left as they are; their query strings are cut as always (see ``_logfilter``).

It is meant for a quick look. An application that configures logging itself should leave ``ODAPI_LOG`` unset
and configure the ``odapi_async`` logger like any other. Unset, empty or ``off``: nothing changes.
"""

from __future__ import annotations

import logging
import os
import sys
import warnings
from collections.abc import Mapping

__all__ = ["ENV", "LEVELS", "configure_from_env", "level_from_env"]

ENV = "ODAPI_LOG"
LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING}
FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class _EnvHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The handler ODAPI_LOG attaches (a class of its own, so that it is attached once)."""


def level_from_env(environ: Mapping[str, str] | None = None) -> int | None:
    """The level ``ODAPI_LOG`` asks for, or None (unset, empty, ``off``; an unknown word warns)."""
    value = (os.environ if environ is None else environ).get(ENV, "").strip().lower()
    if value in ("", "off", "0", "false", "no"):
        return None
    if value not in LEVELS:
        warnings.warn(f"{ENV}={value!r}: expected one of {', '.join(LEVELS)} (or off); ignored", stacklevel=2)
        return None
    return LEVELS[value]


def configure_from_env(environ: Mapping[str, str] | None = None) -> logging.Handler | None:
    """Attach the stderr handler ``ODAPI_LOG`` asks for (once); returns it, or None when not asked."""
    level = level_from_env(environ)
    if level is None:
        return None
    logger = logging.getLogger("odapi_async")
    handler = next((h for h in logger.handlers if isinstance(h, _EnvHandler)), None)
    if handler is None:
        handler = _EnvHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(FORMAT))
        logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False  # the root logger's handlers (if any) would print every line twice
    return handler
