"""Which offices failed in a pipeline's last run, from what the resources recorded in dlt's trace.

A resource that cannot list an office (a bad key, a server down, a list the office's version lacks) loads the
other offices and records the failure as a custom metric of the resource (``FAILED``); dlt keeps it in the
extract step's trace (``pipeline.last_trace``), beside the row counts, and the resource logs it through dlt's
logger. The office's watermark stays, so its next run asks again from there.
"""

from __future__ import annotations

from typing import Any

#: The ``custom_metrics`` entry of a resource that names its failed offices: ``{office: "Error: message"}``.
FAILED = "failed_offices"


def failed_offices(pipeline: Any) -> dict[str, dict[str, str]]:
    """``{resource: {office: "Error: message"}}`` for the last run of ``pipeline`` (a ``dlt.Pipeline``)."""
    trace = pipeline.last_trace
    info = trace.last_extract_info if trace is not None else None
    out: dict[str, dict[str, str]] = {}
    if info is None:
        return out
    for per_source in info.metrics.values():
        for step in per_source:
            for resource, metrics in step.get("resource_metrics", {}).items():
                failed = (getattr(metrics, "custom_metrics", None) or {}).get(FAILED)
                if failed:
                    out.setdefault(resource, {}).update(failed)
    return out
