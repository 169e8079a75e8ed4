"""Constants and helpers the tests share (importable as ``support``: pytest puts tests/ on the path)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from odapi_async import OpenDental
from odapi_async._settings import KeySettings
from odapi_async._throttle.backend import ProcessThrottle
from odapi_async._throttle.key import KeyThrottle

BASE = "http://od.test/api/v1"
DEV_KEY = "DEVKEY-s3cr3t-dev"
CUST_KEY = "CUSTKEY-s3cr3t-cust"


def fast_retries(od: OpenDental) -> OpenDental:
    """Shrink the backoff so retry tests take milliseconds (the policy's shape is unchanged)."""
    options = od._requests.options
    fast = replace(options, retry=replace(options.retry, base_delay=0.001, max_delay=0.002))
    od._requests = od._requests.with_options(fast)
    return od


def for_key(
    reg: ProcessThrottle, mode: Any, key_id: str, *, max_in_flight: int | None = None, **kw: Any
) -> KeyThrottle:
    """The throttle of (mode, key_id) in ``reg``; settings given here are applied to it (the last writer wins)."""
    if not kw and max_in_flight is None:
        return reg.key(mode, key_id)
    cap = {mode: max_in_flight} if max_in_flight is not None else None
    return reg.key(mode, key_id, KeySettings.build(mode, max_in_flight=cap, **kw))
