"""Paging: a list call as an async stream of rows.

``paginator`` (``Paginator``: iteration, pages, collect, take, repr, DataFrames), ``stream`` (one pass over the
pages: the stop rule, the overlap, read-ahead, bounds), ``progress`` (the collect display), ``frames``
(DataFrames from rows and a model) and ``spec`` (``ListSpec``: a list call, frozen). Nothing here imports the
request path or the session: a paginator is handed its fetch.
"""
