"""The request path: one operation in, one answer out.

``interface`` (what the resources are handed), ``attempt`` (one try on one mode → an outcome), ``decide`` (the
outcome → retry, fail over or raise), ``retry`` (backoff and the answers that mean "try again"), ``routing``
(which mode a key's requests go to) and ``pools`` (connection pools per loop and key). Nothing here imports the
session, the resources or the paginator.
"""
