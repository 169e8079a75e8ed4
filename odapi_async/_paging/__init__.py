"""Paging: a list call as an async stream of rows.

``paginator`` (``Paginator``: Offset/Limit pages, read-ahead, the stop rule), ``bounds`` (``max_rows``,
``take``, ``first``, the list's description), ``progress`` (the collect display) and ``frames`` (DataFrames typed
from the models). Nothing here imports the request path or the session: a paginator is handed its fetch.
"""
