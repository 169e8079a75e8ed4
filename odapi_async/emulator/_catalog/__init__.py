"""What the spec says, read once: the resources, operations and fields (``routes``), the docs' row shapes
(``row_shapes``) and the OpenAPI document built from both (``openapi``). Below everything else of the emulator;
needs nothing beyond the SDK (no starlette), so :mod:`odapi_async.openapi` works from a plain install."""
