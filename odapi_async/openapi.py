"""An OpenAPI 3.1 description of the Open Dental API, generated from the SDK's spec (``spec/``).

For tools that speak OpenAPI (schemathesis, client generators, API browsers)::

    from odapi_async.openapi import openapi_document
    doc = openapi_document(server_url="http://127.0.0.1:30222/api/v1")

or ``python -m odapi_async.openapi [--server URL] > openapi.json``. It needs nothing beyond the SDK itself (the
emulator's extra is not required). The document is built beside the emulator's catalog of the spec
(``odapi_async.emulator._catalog.openapi``), which knows the forms the API really answers in.
"""

from __future__ import annotations

import sys

from odapi_async.emulator._catalog.openapi import main, openapi_document

__all__ = ["openapi_document"]

if __name__ == "__main__":
    sys.exit(main())
