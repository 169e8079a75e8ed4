"""The API's resources and models, generated from the spec.

Models are importable by name from here (``from odapi_async.resources import Appointment``); each is loaded
on first use so that importing the SDK stays fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from odapi_async.resources._generated import MODELS, RESOURCES

if TYPE_CHECKING:  # type checkers see every name with its type; at run time __getattr__ loads them lazily
    from odapi_async.resources._generated._exports import *  # noqa: F403

__all__ = sorted([*MODELS, *RESOURCES.values()])

_MODULE_OF = {**MODELS, **{cls: seg for seg, cls in RESOURCES.items()}}


def __getattr__(name: str) -> Any:
    segment = _MODULE_OF.get(name)
    if segment is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}._generated.{segment}"), name)
    globals()[name] = value
    return value
