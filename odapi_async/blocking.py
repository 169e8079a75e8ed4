"""The blocking client: ``from odapi_async.blocking import OpenDental`` (see ``docs/web.md``)."""

from odapi_async._blocking import BlockingPaginator, OpenDental, shutdown

__all__ = ["BlockingPaginator", "OpenDental", "shutdown"]
