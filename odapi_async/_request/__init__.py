"""The request path: one operation in, one answer out.

``loop`` (``RequestLoop``: the retry and failover loop, and the seam the resources are handed), ``decide`` (an
outcome → retry, fail over or raise), ``routing`` (which mode a key's requests go to, and probing), ``permissions``
(the permission an operation needs), ``attempt`` (one try on one mode → an outcome), ``options`` (one view's
settings), ``pools`` (connection pools per loop and key), ``interface`` (``RequestPath``, ``Prepared``,
``Answer``) and ``retry`` (backoff and the answers that mean "try again"). Nothing here imports the session, the
resources or the paginator.
"""
