"""Loaded at interpreter start (this folder is on PYTHONPATH): hides the modules named in ODAPI_TEST_BLOCK.

``sys.modules[name] = None`` makes ``import name`` (and its submodules) raise ModuleNotFoundError, as on a
machine where the package is not installed.
"""

import os
import sys

for _name in filter(None, os.environ.get("ODAPI_TEST_BLOCK", "").split(",")):
    sys.modules[_name] = None  # type: ignore[assignment]
