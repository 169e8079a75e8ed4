"""``python -m odapi_async.cli``: the same as the ``odapi`` command."""

import sys

from odapi_async.cli import main

sys.exit(main())
