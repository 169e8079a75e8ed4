"""Small helpers with no knowledge of Open Dental: the bottom layer, importing nothing else of the package.

``redact`` (secrets kept out of text), ``logfilter`` (query strings kept out of transport logs), ``perloop`` (one
value per event loop), ``forksafe`` (state reset in a forked child), ``redis_client`` (a Redis or Cluster client and
its scripts) and ``sqlite`` (connections and transactions).
"""
