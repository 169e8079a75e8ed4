"""Constants and helpers the tests share (importable as ``support``: pytest puts tests/ on the path)."""

from __future__ import annotations

from dataclasses import replace

from odapi_async import OpenDental

BASE = "http://od.test/api/v1"
DEV_KEY = "DEVKEY-s3cr3t-dev"
CUST_KEY = "CUSTKEY-s3cr3t-cust"


def fast_retries(od: OpenDental) -> OpenDental:
    """Shrink the backoff so retry tests take milliseconds (the policy's shape is unchanged)."""
    od._options = replace(od._options, retry=replace(od._options.retry, base_delay=0.001, max_delay=0.002))
    return od
