"""The throttle: how fast one key's requests may go, for the whole process (or, with Redis, the fleet).

``backend`` (the seam the session talks to: ``ThrottleBackend``, ``ProcessThrottle``), ``key`` (``KeyThrottle``:
one key in one mode), ``lanes`` (its two-lane queue), ``margin`` (its safety margin), ``redis`` and
``redis_scripts`` (``RedisThrottle``: the same protocol in front of a lease held in Redis, and its Lua).
Nothing here imports the request path, the session or the resources.
"""
