"""OpenTelemetry spans and metrics from the request path, with the real SDK's in-memory exporters, against the
emulator over real sockets: a stream, a retry after a 504, a failover, a 429 — and nothing secret exported."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import pytest_asyncio

pytest.importorskip("opentelemetry.sdk")

from opentelemetry.sdk.metrics import MeterProvider  # noqa: E402
from opentelemetry.sdk.metrics.export import InMemoryMetricReader  # noqa: E402
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import SimpleSpanProcessor  # noqa: E402
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter  # noqa: E402
from opentelemetry.trace import SpanKind, StatusCode  # noqa: E402

from odapi_async import Hub, NotFound, OpenDental, Telemetry  # noqa: E402
from odapi_async.emulator import Emulator  # noqa: E402
from support import fast_retries  # noqa: E402

pytestmark = [pytest.mark.integration]

DEV = "DEVKEY-telemetry-0123456789abcdef"
CUST = "CUSTKEY-telemetry-fedcba9876543210"
READ_ALL = "ROKEY-telemetry-00112233445566"
KEYS = {CUST: "full", READ_ALL: "read_all"}
FAST = {"full": 0.01, "read_all": 0.1}
SECRETS = (DEV, CUST, READ_ALL, "ODFHIR")


def attr_of(item: Any) -> dict[str, Any]:
    """A span's, event's or point's attributes as a plain dict (the SDK types them as optional)."""
    return dict(item.attributes or {})


@dataclass
class Exported:
    spans: InMemorySpanExporter
    metrics: InMemoryMetricReader
    telemetry: Telemetry

    def finished(self) -> list[ReadableSpan]:
        return list(self.spans.get_finished_spans())

    def points(self, name: str) -> list[Any]:
        data = self.metrics.get_metrics_data()
        found: list[Any] = []
        for resource in data.resource_metrics if data else ():
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    if metric.name == name:
                        found.extend(metric.data.data_points)
        return found

    def total(self, name: str, **attributes: Any) -> float:
        points = [p for p in self.points(name) if all(attr_of(p).get(k) == v for k, v in attributes.items())]
        return sum(p.value if hasattr(p, "value") else p.count for p in points)

    def everything(self) -> str:
        """Every attribute, event, name and resource exported, as one text to search."""
        parts = [span.to_json() for span in self.finished()]
        data = self.metrics.get_metrics_data()
        parts.append(data.to_json() if data else "")
        return "\n".join(parts)


@pytest.fixture
def exported() -> Iterator[Exported]:
    spans = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    yield Exported(spans, reader, Telemetry(tracer_provider=tracer_provider, meter_provider=meter_provider))
    tracer_provider.shutdown()
    meter_provider.shutdown()


@pytest_asyncio.fixture
async def emu() -> AsyncIterator[Emulator]:
    async with Emulator(
        seed=5,
        patients=250,
        developer_key=DEV,
        customer_keys=KEYS,
        intervals=FAST,
        fractional_retry_after=True,
    ) as e:
        yield e


@pytest.fixture
def emu_in_thread() -> Iterator[Emulator]:
    with Emulator(
        seed=5, patients=120, developer_key=DEV, customer_keys=KEYS, intervals=FAST
    ).in_thread() as e:
        yield e


def session(emu: Emulator, exported: Exported, **kw: Any) -> OpenDental:
    kw.setdefault("modes", ("local",))
    kw.setdefault("endpoints", emu.endpoints)
    return OpenDental(DEV, kw.pop("key", CUST), hub=Hub(), telemetry=exported.telemetry, **kw)


def by_kind(spans: list[ReadableSpan], kind: SpanKind) -> list[ReadableSpan]:
    return [s for s in spans if s.kind is kind]


def children(spans: list[ReadableSpan], parent: ReadableSpan) -> list[ReadableSpan]:
    return sorted(
        (s for s in spans if s.parent is not None and s.parent.span_id == parent.context.span_id),
        key=lambda s: s.start_time or 0,
    )


def assert_nothing_secret(exported: Exported, emu: Emulator) -> None:
    text = exported.everything()
    assert text  # something was exported: the search below means something
    for secret in SECRETS:
        assert secret not in text
    assert "?" not in json.dumps([dict(attr_of(s) or {}) for s in exported.finished()])  # no query string
    assert "Offset=" not in text and "Limit=" not in text
    names = {row[0] for row in emu.db.execute("SELECT LName FROM patients") if row[0] and len(row[0]) > 3}
    names |= {row[0] for row in emu.db.execute("SELECT FName FROM patients") if row[0] and len(row[0]) > 3}
    assert names  # the emulator has patients whose names could leak
    leaked = [name for name in names if f'"{name}"' in text]
    assert leaked == []


async def test_a_stream_is_a_span_per_page_with_an_attempt_each(emu: Emulator, exported: Exported) -> None:
    async with session(emu, exported, read_ahead=0) as od:
        rows = [p async for p in od.patients.list(Limit=40)]
        key_id = od.key_id
    spans = exported.finished()
    operations = by_kind(spans, SpanKind.INTERNAL)
    attempts = by_kind(spans, SpanKind.CLIENT)
    assert len(rows) > 200
    assert len(operations) == len(attempts) >= 6  # pages of 40, each page one attempt
    port = int(emu.endpoints["local"].rsplit(":", 1)[1].split("/", 1)[0])
    for op in operations:
        assert op.name == "patients.list"
        assert attr_of(op)["odapi.operation"] == "patients.list"
        assert attr_of(op)["url.template"] == "/patients"
        assert attr_of(op)["odapi.key_id"] == key_id
        assert attr_of(op)["odapi.mode"] == "local"
        assert attr_of(op)["odapi.attempts"] == 1
        assert op.status.status_code is StatusCode.UNSET
        (attempt,) = children(spans, op)
        assert attempt.name == "GET /patients"
        attrs = attr_of(attempt)
        assert attrs["http.request.method"] == "GET"
        assert attrs["server.address"] == "127.0.0.1" and attrs["server.port"] == port
        assert attrs["http.response.status_code"] == 200
        assert attrs["odapi.mode"] == "local" and attr_of(op)["odapi.priority"] == "bulk"
        assert "http.request.resend_count" not in attrs and "error.type" not in attrs
        assert attrs["odapi.throttle.wait"] >= 0
    # Rows received: every row once, plus the one row each later page overlaps (docs: the stop rule).
    received = exported.total("odapi.list.rows", **{"odapi.operation": "patients.list"})
    assert received == len(rows) + len(operations) - 1
    assert exported.total("http.client.request.duration", **{"odapi.mode": "local"}) == len(attempts)
    assert exported.total("odapi.throttle.wait") == len(attempts)
    (queued,) = exported.points("odapi.throttle.queued")  # read from the throttle when collected
    assert dict(attr_of(queued)) == {"odapi.mode": "local"} and queued.value == 0
    assert_nothing_secret(exported, emu)


async def test_a_504_is_retried_in_a_second_attempt_span(emu: Emulator, exported: Exported) -> None:
    before = emu.stats()["listeners"]["local"]["faults"]["504"]
    emu.set_faults("local", rate_504=0.6)
    try:
        async with session(emu, exported, max_retries=20) as od:
            fast_retries(od)
            patient = await od.patients.get(7)
    finally:
        emu.clear_faults("local")
    injected = emu.stats()["listeners"]["local"]["faults"]["504"] - before
    assert patient.PatNum == 7
    assert injected >= 1, "no 504 was injected: the test proved nothing"
    spans = exported.finished()
    (op,) = by_kind(spans, SpanKind.INTERNAL)
    attempts = children(spans, op)
    assert op.name == "patients.get" and attr_of(op)["url.template"] == "/patients/{PatNum}"
    assert len(attempts) == injected + 1 == attr_of(op)["odapi.attempts"]
    for i, attempt in enumerate(attempts):
        assert attempt.name == "GET /patients/{PatNum}"
        assert attr_of(attempt).get("http.request.resend_count", 0) == i
    for failed in attempts[:-1]:
        assert attr_of(failed)["http.response.status_code"] == 504
        assert attr_of(failed)["error.type"] == "504"
        assert failed.status.status_code is StatusCode.ERROR
    assert attr_of(attempts[-1])["http.response.status_code"] == 200
    assert "error.type" not in attr_of(attempts[-1]) and "error.type" not in attr_of(op)
    assert exported.total("http.client.request.duration", **{"error.type": "504"}) == injected
    assert_nothing_secret(exported, emu)


async def test_a_failover_is_counted_and_the_next_mode_answers(emu: Emulator, exported: Exported) -> None:
    emu.stop_listener("local")
    try:
        async with session(emu, exported, modes=("local", "remote"), intervals=FAST, tier="full") as od:
            await od.patients.get(3)
            assert od.mode == "remote"
    finally:
        await emu.start_listener("local")
    spans = exported.finished()
    (op,) = by_kind(spans, SpanKind.INTERNAL)
    first, second = children(spans, op)
    assert attr_of(first)["odapi.mode"] == "local"
    assert attr_of(first)["error.type"] == "httpx2.ConnectError"
    assert attr_of(first)["odapi.outcome"] == "not_sent"
    assert "http.response.status_code" not in attr_of(first)
    assert attr_of(second)["odapi.mode"] == "remote"
    assert attr_of(second)["http.request.resend_count"] == 1
    assert attr_of(second)["http.response.status_code"] == 200
    assert attr_of(op)["odapi.mode"] == "remote"
    (event,) = [e for e in op.events if e.name == "odapi.failover"]
    assert dict(attr_of(event)) == {"odapi.mode.from": "local", "odapi.mode.to": "remote"}
    assert (
        exported.total("odapi.mode.failovers", **{"odapi.mode.from": "local", "odapi.mode.to": "remote"}) == 1
    )
    assert_nothing_secret(exported, emu)


async def test_a_429_is_a_refusal_and_the_retry_waits_for_the_throttle(
    emu: Emulator, exported: Exported
) -> None:
    # tier "auto" guesses the full tier's interval for a read_all key: the server refuses one request (429),
    # the throttle learns read_all, and the refused request is sent again after its hold.
    async with session(emu, exported, key=READ_ALL, modes=("remote",), tier="auto", intervals=FAST) as od:
        await asyncio.gather(*(od.patients.get(n) for n in range(1, 5)))
    spans = exported.finished()
    attempts = by_kind(spans, SpanKind.CLIENT)
    refused = [a for a in attempts if attr_of(a).get("http.response.status_code") == 429]
    assert len(refused) == 1
    assert attr_of(refused[0])["error.type"] == "429" and attr_of(refused[0])["odapi.outcome"] == "throttled"
    retried = [a for a in attempts if attr_of(a).get("http.request.resend_count") == 1]
    assert len(retried) == 1 and attr_of(retried[0])["http.response.status_code"] == 200
    assert retried[0].parent is not None and refused[0].parent is not None
    assert retried[0].parent.span_id == refused[0].parent.span_id
    assert exported.total("odapi.throttle.refusals", **{"http.response.status_code": 429}) == 1
    waits = exported.points("odapi.throttle.wait")
    assert sum(p.count for p in waits) == len(attempts) == 5
    assert sum(p.sum for p in waits) >= 3 * FAST["full"]  # requests queued behind each other on Remote
    assert max(attr_of(a)["odapi.throttle.wait"] for a in attempts) > 0
    assert exported.total("odapi.throttle.queued") == 0  # nobody waits any more
    for op in by_kind(spans, SpanKind.INTERNAL):
        assert op.status.status_code is StatusCode.UNSET
    assert_nothing_secret(exported, emu)


async def test_an_error_names_its_status_on_the_operation_span(emu: Emulator, exported: Exported) -> None:
    async with session(emu, exported) as od:
        with pytest.raises(NotFound):
            await od.patients.get(999_999)
        await od.request("GET", "/patients", params={"LName": "Smith", "Limit": 1})
    spans = exported.finished()
    failed, raw = by_kind(spans, SpanKind.INTERNAL)
    assert attr_of(failed)["error.type"] == "404" and failed.status.status_code is StatusCode.ERROR
    assert failed.status.description is None  # the server's text stays out
    assert raw.name == "request GET" and "url.template" not in attr_of(raw)  # no template for a raw path
    (raw_attempt,) = children(spans, raw)
    assert raw_attempt.name == "GET"
    assert "Smith" not in exported.everything()  # a filter's value never reaches an attribute
    assert_nothing_secret(exported, emu)


def test_a_session_takes_its_hubs_setting_unless_given_its_own(exported: Exported) -> None:
    hub = Hub(telemetry=exported.telemetry)
    on = OpenDental(DEV, CUST, hub=hub)
    assert on._core.telemetry is not None and on._core.telemetry.telemetry is exported.telemetry
    assert OpenDental(DEV, CUST, hub=hub, telemetry=False)._core.telemetry is None
    assert (
        OpenDental(DEV, CUST, hub=Hub(telemetry=False), telemetry=exported.telemetry)._core.telemetry
        is not None
    )
    assert on._core.telemetry.key_id == on.key_id != CUST  # the logs' hash, not the key


async def test_telemetry_off_adds_nothing_to_the_session(emu: Emulator) -> None:
    async with OpenDental(
        DEV, CUST, endpoints=emu.endpoints, modes=("local",), hub=Hub(telemetry=False)
    ) as od:
        assert od._core.telemetry is None
        assert od._core.attempts._backend is od._core.backend  # not wrapped
        await od.patients.get(1)


def test_automatic_when_a_global_provider_is_set() -> None:
    # In a child process: a global provider can be set once per process.
    code = """
import odapi_async
from odapi_async import OpenDental
od = OpenDental("d", "c")
assert od._core.telemetry is None, "on without a provider"
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
trace.set_tracer_provider(TracerProvider())
assert OpenDental("d", "c")._core.telemetry is not None, "off with a provider set"
assert OpenDental("d", "c", telemetry=False)._core.telemetry is None
print("ok")
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def test_a_wrong_setting_is_a_configuration_error() -> None:
    from odapi_async import ConfigurationError

    with pytest.raises(ConfigurationError, match="telemetry must be"):
        Hub(telemetry="yes")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="telemetry must be"):
        OpenDental("d", "c", telemetry=1)  # type: ignore[arg-type]


async def test_a_stream_reading_ahead_ends_every_span(emu: Emulator, exported: Exported) -> None:
    # Pages fetched ahead past the end are cancelled: their spans end too, named as cancelled, never left open.
    async with session(emu, exported) as od:
        rows = await od.procedurelogs.list(Limit=100).collect()
    spans = exported.finished()
    operations = by_kind(spans, SpanKind.INTERNAL)
    attempts = by_kind(spans, SpanKind.CLIENT)
    assert rows and len(operations) == len(attempts)
    for op in operations:
        assert len(children(spans, op)) == 1
        assert op.end_time is not None
    for attempt in attempts:
        status = attr_of(attempt).get("http.response.status_code")
        assert status == 200 or attr_of(attempt)["error.type"] == "asyncio.CancelledError"
    assert exported.total("odapi.throttle.queued") == 0
    assert_nothing_secret(exported, emu)


def test_without_the_opentelemetry_api_telemetry_is_off_and_true_names_the_extra() -> None:
    code = """
import sys
import odapi_async
assert not any(name.startswith("opentelemetry") for name in sys.modules), "imported at start"

class NoOpenTelemetry:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "opentelemetry":
            raise ImportError("not installed")

sys.meta_path.insert(0, NoOpenTelemetry())
from odapi_async import ConfigurationError, Hub, OpenDental
assert OpenDental("d", "c")._core.telemetry is None
try:
    Hub(telemetry=True)
except ConfigurationError as exc:
    print(exc)
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "pip install 'odapi-async[otel]'" in done.stdout


# anyio's blocking portal runs each call in a copy of the calling thread's context: the caller's span travels.
def test_the_blocking_client_parents_its_spans_on_the_callers_span(
    emu_in_thread: Emulator, exported: Exported
) -> None:
    from odapi_async.blocking import OpenDental as BlockingOpenDental

    tracer = exported.telemetry.tracer
    with BlockingOpenDental(
        DEV,
        CUST,
        endpoints=emu_in_thread.endpoints,
        modes=("local",),
        hub=Hub(),
        telemetry=exported.telemetry,
    ) as od:
        with tracer.start_as_current_span("view") as view:
            od.patients.get(2)
            rows = od.patients.list(Limit=50).collect()
    assert rows
    spans = exported.finished()
    operations = [s for s in by_kind(spans, SpanKind.INTERNAL) if s.name != "view"]
    assert len(operations) >= 4  # the get and the list's pages
    assert all(op.parent is not None for op in operations)
    assert {op.parent.span_id for op in operations if op.parent is not None} == {
        view.get_span_context().span_id
    }
    assert {op.context.trace_id for op in operations} == {view.get_span_context().trace_id}
