"""OpenTelemetry spans and metrics for the request path (the ``otel`` extra; ``docs/observability.md``).

One span per operation call (``patients.list`` — every page of a list is one call), one child span per attempt
following the HTTP client semantic conventions, and the metrics below. Only the OpenTelemetry *API* is used: the
application configures providers and exporters; this module never does.

What never goes into an attribute: the keys (the key's id, the hash the logs use, stands for it), query strings
and full URLs (filters carry names and birthdates; a path may carry a patient number), server texts and
exception messages (a server may quote patient data back). Errors are named by type or status code only.

The switch (``Hub(telemetry=...)``, ``OpenDental(telemetry=...)``): ``None`` (the default) is *automatic* — on
for sessions made after the application set a global tracer or meter provider, off otherwise; ``True`` uses
the global providers (set now or later); ``False`` is off; a :class:`Telemetry` gives providers of its own.
With telemetry off the request path checks one attribute per call and per list: nothing else runs.
"""

from __future__ import annotations

import contextvars
import sys
import threading
import time
import urllib.parse
import weakref
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import AbstractAsyncContextManager
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

from odapi_async._exceptions import ConfigurationError
from odapi_async._request.attempt import Kind, Outcome
from odapi_async._settings import KeySettings, Mode, Priority, ThrottleStats
from odapi_async._throttle.backend import Slot, ThrottleBackend
from odapi_async._version import __version__

if TYPE_CHECKING:
    from opentelemetry.metrics import Counter, Histogram, ObservableGauge
    from opentelemetry.trace import Tracer

    from odapi_async._request.interface import Prepared
    from odapi_async._request.options import RequestOptions

__all__ = ["OperationTrace", "SessionTelemetry", "Telemetry", "check_setting", "session_telemetry"]

T = TypeVar("T")

#: The instrumentation scope's name, for views and filters.
SCOPE = "odapi_async"
#: The semantic conventions the names and attributes follow.
SCHEMA_URL = "https://opentelemetry.io/schemas/1.27.0"
#: The HTTP semantic conventions' advised buckets for ``http.client.request.duration``.
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
#: Throttle waits run from nothing (Local) to minutes (a read_all key's queue on Remote).
WAIT_BUCKETS = (0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)

_clock = time.perf_counter


class Telemetry:
    """Where the SDK's spans and metrics go: the given providers, or the global ones (read when they are used).

    One object serves many sessions: create it once (instruments are made here) and pass it to a
    :class:`~odapi_async.Hub` or :class:`~odapi_async.OpenDental` as ``telemetry=``.
    """

    def __init__(self, *, tracer_provider: Any = None, meter_provider: Any = None) -> None:
        try:
            from opentelemetry import metrics, trace
        except ImportError:
            raise ConfigurationError(
                "telemetry needs the OpenTelemetry API: pip install 'odapi-async[otel]'"
            ) from None
        self.tracer: Tracer = trace.get_tracer(SCOPE, __version__, tracer_provider, schema_url=SCHEMA_URL)
        meter = metrics.get_meter(SCOPE, __version__, meter_provider, schema_url=SCHEMA_URL)
        self.duration: Histogram = meter.create_histogram(
            "http.client.request.duration",
            unit="s",
            description="Duration of HTTP client requests (from the throttle's grant to the whole answer).",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
        )
        self.throttle_wait: Histogram = meter.create_histogram(
            "odapi.throttle.wait",
            unit="s",
            description="Time an attempt waited for its key's throttle before it could be sent.",
            explicit_bucket_boundaries_advisory=WAIT_BUCKETS,
        )
        # Read from the backends' own counters when metrics are collected: nothing to do per request.
        self._backends: weakref.WeakSet[ThrottleBackend] = weakref.WeakSet()
        self._backends_lock = threading.Lock()
        self.throttle_queued: ObservableGauge = meter.create_observable_gauge(
            "odapi.throttle.queued",
            callbacks=[self._observe_queued],
            unit="{request}",
            description="Requests waiting for their key's throttle now, over every key of the process.",
        )
        self.throttle_refusals: Counter = meter.create_counter(
            "odapi.throttle.refusals",
            unit="{response}",
            description="Answers refusing a request as too soon (429, or a 400/503 whose text says so).",
        )
        self.failovers: Counter = meter.create_counter(
            "odapi.mode.failovers",
            unit="{request}",
            description="Requests moved to the next mode of the cascade after their mode failed.",
        )
        self.list_rows: Counter = meter.create_counter(
            "odapi.list.rows", unit="{row}", description="Rows received by list streams (every page)."
        )
        self._trace = trace
        from opentelemetry import context

        self._context = context
        self._observation = metrics.Observation

    def watch(self, backend: ThrottleBackend) -> None:
        """Report ``backend``'s queues in ``odapi.throttle.queued`` (held weakly)."""
        with self._backends_lock:
            self._backends.add(backend)

    def _observe_queued(self, options: Any) -> Iterator[Any]:
        with self._backends_lock:
            backends = list(self._backends)
        queued: dict[str, int] = {}
        for backend in backends:
            for (mode, _key), stats in backend.stats().items():
                queued[mode] = queued.get(mode, 0) + stats.queued
        for mode, count in queued.items():
            yield self._observation(count, {"odapi.mode": mode})

    def __repr__(self) -> str:
        return "<Telemetry>"


_GLOBAL: Telemetry | None = None
_GLOBAL_LOCK = threading.Lock()


def _global_telemetry() -> Telemetry:
    """The one telemetry through the global providers (its instruments made once per process)."""
    global _GLOBAL
    with _GLOBAL_LOCK:
        if _GLOBAL is None:
            _GLOBAL = Telemetry()
        return _GLOBAL


def _provider_is_set() -> bool:
    """Whether the application has set a global tracer or meter provider (the automatic switch)."""
    # Setting a provider imports these modules: an application that never did costs no import here.
    trace = sys.modules.get("opentelemetry.trace")
    metrics = sys.modules.get("opentelemetry.metrics")
    if trace is None and metrics is None:
        return False
    if trace is not None:
        provider = trace.get_tracer_provider()
        if not isinstance(provider, (trace.ProxyTracerProvider, trace.NoOpTracerProvider)):
            return True
    if metrics is not None:
        provider = metrics.get_meter_provider()
        # The API's stand-in until a provider is set is a private class: told apart by its name.
        if type(provider).__name__ not in ("_ProxyMeterProvider", "NoOpMeterProvider"):
            return True
    return False


def resolve(setting: bool | Telemetry | None) -> Telemetry | None:
    """The telemetry a setting stands for (module docstring), or None when it is off."""
    if isinstance(setting, Telemetry):
        return setting
    if setting is None:
        return _global_telemetry() if _provider_is_set() else None
    if setting is True:
        return _global_telemetry()
    if setting is False:
        return None
    raise ConfigurationError(f"telemetry must be True, False, None or a Telemetry; got {setting!r}")


def check_setting(setting: bool | Telemetry | None) -> bool | Telemetry | None:
    """``setting``, checked (``True`` without the OpenTelemetry API installed fails here, not later)."""
    if setting is True:
        _global_telemetry()
    elif not (setting is None or setting is False or isinstance(setting, Telemetry)):
        raise ConfigurationError(f"telemetry must be True, False, None or a Telemetry; got {setting!r}")
    return setting


def session_telemetry(
    setting: bool | Telemetry | None, key_id: str, base_urls: Mapping[str, str]
) -> SessionTelemetry | None:
    """A session's telemetry (``None``: off), for its key and endpoints."""
    telemetry = resolve(setting)
    return None if telemetry is None else SessionTelemetry(telemetry, key_id, base_urls)


def _server(url: str) -> dict[str, Any]:
    parts = urllib.parse.urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return {"server.address": parts.hostname or "", "server.port": port}


def error_type(exc: BaseException) -> str:
    """``error.type`` of an exception: its status code for an API status error, else its class."""
    status = getattr(exc, "status_code", None)
    if isinstance(status, int) and status >= 400:
        return str(status)
    cls = type(exc)
    module = cls.__module__.split(".", 1)[0]
    return cls.__qualname__ if module == "builtins" else f"{module}.{cls.__qualname__}"


class SessionTelemetry:
    """One session's telemetry: the shared instruments, its key's id and its endpoints."""

    __slots__ = ("_servers", "key_id", "telemetry")

    def __init__(self, telemetry: Telemetry, key_id: str, base_urls: Mapping[str, str]) -> None:
        self.telemetry = telemetry
        self.key_id = key_id
        self._servers = {mode: _server(url) for mode, url in base_urls.items()}

    def operation(self, name: str, method: str, template: str, priority: Priority) -> OperationTrace:
        """The span of one operation call (``with``: it is the current span inside)."""
        return OperationTrace(self, name, method, template, priority)

    def throttle(self, backend: ThrottleBackend) -> ThrottleBackend:
        """``backend`` with its waits measured for this session's attempts (and its queues reported)."""
        self.telemetry.watch(backend)
        return _TimedBackend(backend, self.telemetry)

    def counted(
        self, fetch: Callable[[int, int], Awaitable[list[T]]], operation: str
    ) -> Callable[[int, int], Awaitable[list[T]]]:
        """A list's page fetcher that counts the rows it receives (``odapi.list.rows``)."""
        rows = self.telemetry.list_rows
        attributes = {"odapi.operation": operation}

        async def fetch_counted(offset: int, limit: int) -> list[T]:
            page = await fetch(offset, limit)
            rows.add(len(page), attributes)
            return page

        return fetch_counted


class _Attempt:
    """What the throttle wrapper tells the attempt running in this context: how long it waited."""

    __slots__ = ("waited",)

    def __init__(self) -> None:
        self.waited = 0.0


_CURRENT_ATTEMPT: contextvars.ContextVar[_Attempt | None] = contextvars.ContextVar(
    "odapi_async_attempt", default=None
)


class OperationTrace:
    """The span of one operation call, and the attempts made for it."""

    __slots__ = (
        "_attempts",
        "_ctx",
        "_method",
        "_mode",
        "_name",
        "_priority",
        "_s",
        "_span",
        "_template",
        "_token",
    )

    def __init__(
        self, session: SessionTelemetry, name: str, method: str, template: str, priority: Priority
    ) -> None:
        self._s = session
        self._name = name
        self._method = method
        self._template = template
        self._priority = priority
        self._attempts = 0
        self._mode: str | None = None

    def __enter__(self) -> OperationTrace:
        tel = self._s.telemetry
        trace = tel._trace
        attributes: dict[str, Any] = {
            "http.request.method": self._method,
            "odapi.key_id": self._s.key_id,
            "odapi.priority": self._priority,
        }
        if self._name:
            attributes["odapi.operation"] = self._name
        if self._template:
            attributes["url.template"] = self._template
        self._span = tel.tracer.start_span(
            self._name or f"request {self._method}", kind=trace.SpanKind.INTERNAL, attributes=attributes
        )
        self._ctx = trace.set_span_in_context(self._span)
        self._token = tel._context.attach(self._ctx)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        span = self._span
        tel = self._s.telemetry
        try:
            if span.is_recording():
                ended: dict[str, Any] = {"odapi.attempts": self._attempts}
                if self._mode is not None:
                    ended["odapi.mode"] = self._mode
                if exc is not None:
                    ended["error.type"] = error_type(exc)
                    # No description: an exception's message may quote the server's text.
                    span.set_status(tel._trace.StatusCode.ERROR)
                span.set_attributes(ended)
            span.end()
        finally:
            tel._context.detach(self._token)

    async def attempt(
        self,
        run: Callable[..., Awaitable[Outcome]],
        mode: Mode,
        req: Prepared,
        options: RequestOptions,
        *,
        retry: bool,
    ) -> Outcome:
        """``await run(mode, req, options, retry=retry)`` inside the attempt's span, measured."""
        s = self._s
        tel = s.telemetry
        trace = tel._trace
        resends = self._attempts
        self._attempts += 1
        self._mode = mode
        server = s._servers[mode]
        # The metric's attributes (the conventions' stable set, and the mode); the span has them too.
        common: dict[str, Any] = {"http.request.method": req.method, **server, "odapi.mode": mode}
        if self._template:
            common["url.template"] = self._template
        attributes = {**common, "http.request.resend_count": resends} if resends else common
        name = f"{req.method} {self._template}" if self._template else req.method
        span = tel.tracer.start_span(name, self._ctx, kind=trace.SpanKind.CLIENT, attributes=attributes)
        token = tel._context.attach(trace.set_span_in_context(span, self._ctx))
        record = _Attempt()
        mark = _CURRENT_ATTEMPT.set(record)
        ended: dict[str, Any] = {}
        started = _clock()
        try:
            outcome = await run(mode, req, options, retry=retry)
        except BaseException as exc:  # cancelled (an attempt reports everything else in its outcome)
            common["error.type"] = ended["error.type"] = error_type(exc)
            raise
        else:
            _describe(outcome, common)
            ended["odapi.outcome"] = outcome.kind.value
            if outcome.kind is Kind.THROTTLED:
                tel.throttle_refusals.add(
                    1, {"odapi.mode": mode, "http.response.status_code": outcome.status}
                )
            return outcome
        finally:
            took = _clock() - started
            tel.duration.record(max(took - record.waited, 0.0), common)
            if span.is_recording():
                for key in ("http.response.status_code", "error.type"):
                    if key in common:
                        ended[key] = common[key]
                ended["odapi.throttle.wait"] = record.waited
                span.set_attributes(ended)
                if "error.type" in ended:
                    span.set_status(trace.StatusCode.ERROR)
            span.end()
            _CURRENT_ATTEMPT.reset(mark)
            tel._context.detach(token)

    def failed_over(self, old: Mode, new: Mode) -> None:
        """The call moves from ``old`` to ``new`` (the cascade's next mode)."""
        self._s.telemetry.failovers.add(1, {"odapi.mode.from": old, "odapi.mode.to": new})
        self._span.add_event("odapi.failover", {"odapi.mode.from": old, "odapi.mode.to": new})


def _describe(outcome: Outcome, into: dict[str, Any]) -> None:
    """The semantic conventions' status code and ``error.type`` of an attempt's outcome."""
    if outcome.kind in (Kind.NOT_SENT, Kind.LOST):
        if outcome.cause is not None:
            into["error.type"] = error_type(outcome.cause)
        else:
            into["error.type"] = "TimeoutError" if outcome.timed_out else "_OTHER"
        return
    status = outcome.answer.status_code if outcome.answer is not None else outcome.status
    into["http.response.status_code"] = status
    if status >= 400:
        into["error.type"] = str(status)


class _TimedSlot:
    """The backend's slot, with the wait for it measured."""

    __slots__ = ("_attributes", "_inner", "_tel")

    def __init__(
        self, inner: AbstractAsyncContextManager[Slot], tel: Telemetry, attributes: dict[str, Any]
    ) -> None:
        self._inner = inner
        self._tel = tel
        self._attributes = attributes

    async def __aenter__(self) -> Slot:
        started = _clock()
        slot = await self._inner.__aenter__()
        waited = _clock() - started
        self._tel.throttle_wait.record(waited, self._attributes)
        record = _CURRENT_ATTEMPT.get()
        if record is not None:
            record.waited = waited
        return slot

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool | None:
        return await self._inner.__aexit__(exc_type, exc, tb)


class _TimedBackend:
    """A throttle backend whose slots are timed; everything else is the backend's own."""

    def __init__(self, backend: ThrottleBackend, tel: Telemetry) -> None:
        self._backend = backend
        self._tel = tel

    def __repr__(self) -> str:
        return f"<timed {self._backend!r}>"

    def configure(self, mode: Mode, key_id: str, settings: KeySettings) -> None:
        self._backend.configure(mode, key_id, settings)

    def slot(
        self, mode: Mode, key_id: str, priority: Priority = "bulk", *, retry: bool = False
    ) -> AbstractAsyncContextManager[Slot]:
        inner = self._backend.slot(mode, key_id, priority, retry=retry)
        return _TimedSlot(inner, self._tel, {"odapi.mode": mode, "odapi.priority": priority})

    def interval(self, mode: Mode, key_id: str) -> float:
        return self._backend.interval(mode, key_id)

    def max_in_flight(self, mode: Mode, key_id: str) -> int:
        return self._backend.max_in_flight(mode, key_id)

    def stats(self, key_id: str | None = None) -> dict[tuple[str, str], ThrottleStats]:
        return self._backend.stats(key_id)
