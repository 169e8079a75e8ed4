"""The request path's cost per call with OpenTelemetry off and on (docs/observability.md).

The network is taken out: every key's transport is an in-process ``httpx2.MockTransport`` answering one patient
at once, so what is measured is the SDK's own work per call (arguments, encoding, throttle slot, pool, attempt,
decision, decoding) and what telemetry adds to it. N sequential ``patients.get`` calls on Local (no spacing),
best of R rounds (CPU time of the thread), the configurations interleaved round by round:

- ``off``: ``telemetry=False`` (the default when no provider is set);
- ``api``: ``telemetry=True`` with no provider set (the OpenTelemetry API's no-op tracer and meter);
- ``sdk``: a real SDK ``TracerProvider`` (a batch span processor, an exporter that drops the spans) and
  ``MeterProvider`` (an in-memory reader): every span and data point recorded, as in production.

Run on a checkout without telemetry (``off`` only), it gives the baseline the ``off`` figure is compared with;
``python benchmarks/bench_telemetry.py off`` runs only the configurations named.
Prints one JSON line and a one-line summary (µs per call, and what each adds to ``off``).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx2  # noqa: E402

from odapi_async import Hub, OpenDental  # noqa: E402

CALLS = 3000
ROUNDS = 7
BODY = json.dumps({"PatNum": 1, "LName": "Doe", "FName": "Jan", "Birthdate": "1980-01-02"}).encode()


def transport(_: int | None) -> httpx2.AsyncBaseTransport:
    def answer(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, content=BODY, headers={"Content-Type": "application/json"})

    return httpx2.MockTransport(answer)


def configurations() -> dict[str, dict[str, Any]]:
    try:
        from odapi_async import Telemetry
    except ImportError:  # a checkout from before telemetry: the baseline
        return {"off": {}}
    found: dict[str, dict[str, Any]] = {"off": {"telemetry": False}, "api": {"telemetry": True}}
    try:
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
    except ImportError:
        return found

    class Drop(SpanExporter):
        def export(self, spans: Sequence[Any]) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(BatchSpanProcessor(Drop(), max_queue_size=1 << 16))
    meter_provider = MeterProvider(metric_readers=[InMemoryMetricReader()])
    found["sdk"] = {"telemetry": Telemetry(tracer_provider=tracer_provider, meter_provider=meter_provider)}
    return found


async def one_round(options: dict[str, Any]) -> float:
    hub = Hub(transport_factory=transport)
    async with OpenDental("dev", "cust", modes=("local",), hub=hub, **options) as od:
        for _ in range(50):  # warm the pool and the caches
            await od.patients.get(1)
        # CPU time of this thread: with no network the calls never wait, and on a shared machine the wall clock
        # also counts the other processes' turns.
        start = time.thread_time()
        for _ in range(CALLS):
            await od.patients.get(1)
        return time.thread_time() - start


def main() -> None:
    configs = configurations()
    if sys.argv[1:]:  # e.g. ``off``: only the configurations named
        configs = {name: configs[name] for name in sys.argv[1:]}
    best = dict.fromkeys(configs, float("inf"))
    for _ in range(ROUNDS):
        for name, options in configs.items():
            best[name] = min(best[name], asyncio.run(one_round(options)))
    us = {name: round(seconds / CALLS * 1e6, 2) for name, seconds in best.items()}
    added = {name: round(us[name] - us["off"], 2) for name in us if name != "off" and "off" in us}
    print(
        json.dumps(
            {"benchmark": "telemetry", "calls": CALLS, "rounds": ROUNDS, "us_per_call": us, "added_us": added}
        )
    )
    parts = [f"{name} {value:.1f} µs" for name, value in us.items()]
    extra = ", ".join(f"{name} +{value:.1f} µs" for name, value in added.items())
    print(f"per patients.get (no network): {', '.join(parts)}" + (f"; over off: {extra}" if extra else ""))


if __name__ == "__main__":
    main()
