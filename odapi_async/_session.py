"""The session: one customer key, its endpoints, and the loop every request takes.

A request goes: arguments checked (``_operation``) → encoded once (:class:`Prepared`) → for each attempt, the
mode in use (``_request.routing``) → one attempt (``_request.attempt``: throttle slot, pool, send, read) → an
outcome → the decision (``_request.decide``: retry, fail over, raise). ``docs/architecture.md`` draws it. Keys
are held in a :class:`Secret` so that no repr, log line, traceback-with-locals or exception ever shows them.
"""

from __future__ import annotations

import hashlib
import logging
import time
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from types import TracebackType
from typing import Any, TypeVar, overload

import anyio
import httpx2

from odapi_async._arguments import (
    check_count,
    check_modes,
    check_positive,
    check_priority,
    check_request_path,
    check_url,
    default_modes,
    make_timeout,
    read_key,
    text_or_empty,
)
from odapi_async._codec import check_body_size, encode_body, query_value, wire_value
from odapi_async._display import StatsTable
from odapi_async._exceptions import ConfigurationError, SessionClosed, Unauthorized
from odapi_async._hub import Hub, default_hub
from odapi_async._operation import Operation
from odapi_async._permissions import name_the_permission, warn_if_read_only
from odapi_async._raw import RawRequests, reader_for
from odapi_async._request.attempt import AttemptOptions, AttemptRunner, Kind, total_deadline
from odapi_async._request.decide import Action, decide, error_for
from odapi_async._request.interface import Answer, Prepared, decode_or_raise
from odapi_async._request.retry import RetryPolicy
from odapi_async._request.routing import PROBE_PATH, PROBE_QUERY, ModeReport, ModeRouter
from odapi_async._request.telemetry import OperationTrace, SessionTelemetry, Telemetry, session_telemetry
from odapi_async._settings import (
    MODES,
    TIERS,
    KeySettings,
    Mode,
    Priority,
    ThrottleStats,
    Tier,
    in_flight_for,
)
from odapi_async._throttle.backend import ThrottleBackend
from odapi_async._util.redact import Secret, scrub
from odapi_async.resources._generated import GeneratedResources

__all__ = ["Answer", "OpenDental", "key_id_for"]

logger = logging.getLogger("odapi_async")

_R = TypeVar("_R")

DEFAULT_ENDPOINTS = {
    "local": "http://localhost:30222/api/v1",
    "service": "http://{service_host}:30223/api/v1",
    "remote": "https://api.opendental.com/api/v1",
}
#: Rows per page each mode serves at most (Enterprise: 1000 Remote, 10 000 Local/Service).
PAGE_CAPS = {"local": 1000, "service": 1000, "remote": 100}
ENTERPRISE_PAGE_CAPS = {"local": 10_000, "service": 10_000, "remote": 1000}
#: Pages fetched ahead of the one being read, on unthrottled modes.
READ_AHEAD = 3
#: The default cap on one answer's body.
MAX_RESPONSE_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class _Options:
    """Per-view settings (``with_options`` changes these and shares everything else)."""

    router: ModeRouter
    timeout: httpx2.Timeout
    total: float
    retry: RetryPolicy
    priority: Priority
    max_retry_wait: float
    max_response_bytes: int
    read_ahead: int

    def for_attempt(self, probe_timeout: float | None = None) -> AttemptOptions:
        """What an attempt needs; ``probe_timeout`` shortens the connect phase (a mode not yet seen answering)."""
        timeout = self.timeout
        if probe_timeout is not None and (timeout.connect is None or timeout.connect > probe_timeout):
            timeout = httpx2.Timeout(
                connect=probe_timeout, read=timeout.read, write=timeout.write, pool=timeout.pool
            )
        return AttemptOptions(
            timeout=timeout,
            total=self.total,
            priority=self.priority,
            max_retry_wait=self.max_retry_wait,
            max_response_bytes=self.max_response_bytes,
        )


@dataclass(eq=False)
class _Core:
    """What every view of one session shares."""

    auth: Secret
    keys: tuple[Secret, ...]  # the developer and customer keys, to scrub from any text we pass on
    key_id: str
    tier: Tier
    hub: Hub
    backend: ThrottleBackend
    base_urls: dict[str, str]
    probe_timeout: float
    failback_interval: float
    pool_size: int  # connections this key can have in use at once: its in-flight caps over its modes
    attempts: AttemptRunner | None = None
    telemetry: SessionTelemetry | None = None  # None: off (docs/observability.md)
    entered: int = 0  # ``async with`` blocks of the session (not its views) not yet left
    closed: bool = False

    def scrub(self, text: str) -> str:
        """``text`` with every key replaced by ``***`` (server texts and network errors may quote them)."""
        return scrub(text, (key.reveal() for key in self.keys))


def key_id_for(customer_key: str) -> str:
    """An opaque, stable id for a customer key: safe to log, and the throttle's registry key."""
    return hashlib.sha256(b"odapi-async\0" + customer_key.encode()).hexdigest()[:12]


class OpenDental(GeneratedResources):
    """An Open Dental API session for one customer key.

    Every resource of the API is an attribute named by its URL segment (``od.patients``,
    ``od.procedurelogs``); :meth:`request` reaches anything the spec lacks through the same throttle, retries and
    errors. Throttle state is per process and key; close the session (``async with`` or :meth:`aclose`) to
    release its share of the connection pools.
    """

    def __init__(
        self,
        developer_key: str | None = None,
        customer_key: str | None = None,
        *,
        modes: Sequence[Mode] | None = None,
        service_host: str | None = None,
        tier: Tier = "auto",
        endpoints: Mapping[str, str] | None = None,
        timeout: float | httpx2.Timeout = 60.0,
        connect_timeout: float = 5.0,
        max_retries: int = 2,
        priority: Priority = "bulk",
        intervals: Mapping[str, float] | None = None,
        max_in_flight: int | Mapping[str, int] | None = None,
        safety_margin: float | None = None,
        max_retry_wait: float = 60.0,
        max_response_bytes: int = MAX_RESPONSE_BYTES,
        probe_timeout: float = 1.0,
        failback_interval: float = 60.0,
        read_ahead: int = READ_AHEAD,
        throttle: ThrottleBackend | None = None,
        hub: Hub | None = None,
        telemetry: bool | Telemetry | None = None,
    ) -> None:
        # Wrap the keys first, so that no raw key stays in this frame's locals (tracebacks with locals).
        given = (Secret(text_or_empty(developer_key)), Secret(text_or_empty(customer_key)))
        developer_key = customer_key = None
        dev = read_key(given[0], "ODAPI_DEVELOPER_KEY", "developer")
        cust = read_key(given[1], "ODAPI_CUSTOMER_KEY", "customer")
        if tier not in TIERS:
            raise ConfigurationError(f"tier must be one of {TIERS}; got {tier!r}")
        if service_host is not None and (
            not isinstance(service_host, str) or not service_host or "/" in service_host
        ):
            raise ConfigurationError(f"service_host must be a host name or address; got {service_host!r}")
        if endpoints is not None and not isinstance(endpoints, Mapping):
            raise ConfigurationError("endpoints must be a mapping of mode to URL")
        modes = check_modes(modes) if modes is not None else default_modes(service_host, endpoints)
        host = service_host or "localhost"
        base_urls = {m: url.format(service_host=host) for m, url in DEFAULT_ENDPOINTS.items()}
        for mode, url in (endpoints or {}).items():
            if mode not in MODES:
                raise ConfigurationError(f"endpoints: unknown mode {mode!r}; modes are {MODES}")
            base_urls[mode] = check_url(mode, url)
        hub = hub or default_hub
        backend = throttle if throttle is not None else hub.throttle
        key_id = key_id_for(cust.reveal())
        try:
            for mode in modes:
                backend.configure(
                    mode,
                    key_id,
                    KeySettings.build(
                        mode,
                        tier=tier,
                        intervals=intervals,
                        max_in_flight=max_in_flight,
                        safety_margin=safety_margin,
                    ),
                )
            pool_size = sum(in_flight_for(mode, max_in_flight) for mode in modes)
        except ValueError as exc:
            raise ConfigurationError(str(exc)) from None
        auth = Secret(f"ODFHIR {dev.reveal()}/{cust.reveal()}")
        core = _Core(
            auth=auth,
            keys=(dev, cust),
            key_id=key_id,
            tier=tier,
            hub=hub,
            backend=backend,
            base_urls={m: u.rstrip("/") for m, u in base_urls.items()},
            probe_timeout=check_positive("probe_timeout", probe_timeout),
            failback_interval=check_positive("failback_interval", failback_interval, zero=True),
            pool_size=pool_size,
            telemetry=session_telemetry(hub.telemetry if telemetry is None else telemetry, key_id, base_urls),
        )
        core.attempts = AttemptRunner(
            backend=backend if core.telemetry is None else core.telemetry.throttle(backend),
            pools=hub.pools,
            key_id=key_id,
            user=core,
            base_urls=core.base_urls,
            # httpx2.Headers masks Authorization in its repr (tracebacks with locals).
            headers=httpx2.Headers({"Authorization": auth.reveal(), "Content-Type": "application/json"}),
            scrub=core.scrub,
            keys=core.keys,
            pool_size=pool_size,
        )
        self._core = core
        self._owner = True  # views made by with_options do not close the session
        self._options = _Options(
            router=_router(core, modes),
            timeout=make_timeout(timeout, connect_timeout),
            total=check_positive("timeout", total_deadline(timeout)),
            retry=RetryPolicy(max_retries=check_count("max_retries", max_retries)),
            priority=check_priority(priority),
            max_retry_wait=check_positive("max_retry_wait", max_retry_wait, zero=True),
            max_response_bytes=check_count("max_response_bytes", max_response_bytes, least=1),
            read_ahead=check_count("read_ahead", read_ahead),
        )

    # ------------------------------------------------------------------------------------------ public

    def __repr__(self) -> str:
        core = getattr(self, "_core", None)
        if core is None:  # __init__ raised: a traceback shown with its locals still reprs ``self``
            return "<OpenDental (not set up)>"
        state = " closed" if core.closed else ""
        return f"<OpenDental key_id={core.key_id} mode={self.mode} tier={core.tier}{state}>"

    async def __aenter__(self) -> OpenDental:
        if self._core.closed:
            raise SessionClosed("this session was closed; make a new OpenDental(...)")
        if self._owner:
            self._core.entered += 1
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        core = self._core
        if self._owner and core.entered:
            core.entered -= 1
            if not core.entered:
                await self.aclose()

    async def aclose(self) -> None:
        """Close the session: release its share of the connection pools; using it afterwards raises.

        A pool shared with another session of the key, or still carrying a request, stays open (the last one
        out closes it). On a view made by :meth:`with_options` this does nothing: the session owns the lifecycle.
        """
        core = self._core
        if not self._owner or core.closed:
            return
        core.closed = True
        core.entered = 0
        await core.hub.pools.release(core)

    @property
    def closed(self) -> bool:
        return self._core.closed

    @property
    def key_id(self) -> str:
        """An opaque id of the customer key, safe to log."""
        return self._core.key_id

    @property
    def mode(self) -> Mode:
        """The mode requests go to now (it moves down the cascade on failures and back up when a mode returns)."""
        return self._options.router.mode

    @property
    def modes(self) -> tuple[Mode, ...]:
        """The cascade order of this session (or view)."""
        return self._options.router.modes

    async def probe(self) -> dict[Mode, ModeReport]:
        """Probe every Local/Service mode of the cascade now and report on each mode (Remote is not probed).

        A higher mode that answers is used again at once; the mode in use that does not answer is left. A 401
        raises :class:`Unauthorized` (a wrong key is wrong everywhere).
        """
        router = self._options.router
        reports: dict[Mode, ModeReport] = {}
        for mode in router.modes:
            report = await self._probe_mode(mode)
            if report.error and report.error.startswith("401"):
                raise Unauthorized(
                    status_code=401, method="GET", path=PROBE_PATH, mode=mode, explanation=report.error[4:]
                )
            if report.reachable:
                router.move_back(mode)
            elif report.reachable is False and router.mode == mode:
                router.fail_over(mode, report.error or "no answer")
            reports[mode] = report
        return {m: replace(r, in_use=m == router.mode) for m, r in reports.items()}

    def with_options(
        self,
        *,
        timeout: float | httpx2.Timeout | None = None,
        max_retries: int | None = None,
        priority: Priority | None = None,
        max_retry_wait: float | None = None,
        modes: Sequence[Mode] | None = None,
        read_ahead: int | None = None,
    ) -> OpenDental:
        """A view of this session with other per-request settings; it shares keys, pool, throttle and life.

        ``modes=("remote",)`` pins the view to those modes (a cascade of its own, in that order).
        """
        options = self._options
        if modes is not None:
            options = replace(options, router=_router(self._core, check_modes(modes)))
        if read_ahead is not None:
            options = replace(options, read_ahead=check_count("read_ahead", read_ahead))
        if timeout is not None:
            total = check_positive("timeout", total_deadline(timeout))
            connect = options.timeout.connect or 5.0
            options = replace(options, timeout=make_timeout(timeout, connect), total=total)
        if max_retries is not None:
            count = check_count("max_retries", max_retries)
            options = replace(options, retry=replace(options.retry, max_retries=count))
        if priority is not None:
            options = replace(options, priority=check_priority(priority))
        if max_retry_wait is not None:
            options = replace(
                options, max_retry_wait=check_positive("max_retry_wait", max_retry_wait, zero=True)
            )
        view = object.__new__(type(self))
        view._core = self._core
        view._owner = False
        view._options = options
        return view

    def throttle_stats(self) -> dict[str, ThrottleStats]:
        """This key's throttle counters, by mode (only modes that have been used); a table in notebooks."""
        found = self._core.backend.stats(self._core.key_id)
        return StatsTable(
            {mode: stats for (mode, _key), stats in found.items() if stats.requests or stats.queued}
        )

    @overload
    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Mapping[str, Any] | None = None,
        idempotent: bool | None = None,
        cast_to: None = None,
    ) -> Any: ...

    @overload
    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Mapping[str, Any] | None = None,
        idempotent: bool | None = None,
        cast_to: type[_R],
    ) -> _R: ...

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Mapping[str, Any] | None = None,
        idempotent: bool | None = None,
        cast_to: Any = None,
    ) -> Any:
        """Call any path (relative to ``/api/v1``) through the session's throttle, retries and errors.

        Values are sent in wire form (booleans as ``"true"``, dates as ``yyyy-MM-dd``…). ``idempotent`` defaults
        to true for GET and DELETE only. Returns the decoded JSON answer (``None`` for an empty body), or, with
        ``cast_to=`` (a model, ``list[Model]`` or any type msgspec decodes), the answer as that type; an answer
        that does not fit raises :class:`DecodeError`. A query string in ``path`` is kept (``params`` win).
        :attr:`with_raw_response` gives the status, headers and body instead.
        """
        # The answer is never bound to a name here, so no frame of a traceback holds its body.
        read = reader_for(cast_to)
        return decode_or_raise(await self._request_answer(method, path, params, json, idempotent), read)

    @property
    def with_raw_response(self) -> RawRequests:
        """``await od.with_raw_response.request(...)``: the answer's status, headers and body, undecoded."""
        return RawRequests(self._request_answer, self)

    async def _request_answer(
        self,
        method: str,
        path: str,
        params: Mapping[str, Any] | None,
        json: Mapping[str, Any] | None,
        idempotent: bool | None,
    ) -> Answer:
        method = method.upper()
        path, _, query_string = path.partition("?")
        path = check_request_path(path)
        query = dict(urllib.parse.parse_qsl(query_string, keep_blank_values=True))
        query.update({k: query_value(v, "") for k, v in (params or {}).items() if v is not None})
        body = {k: wire_value(v, "") for k, v in json.items()} if json is not None else None
        safe = method in ("GET", "DELETE") if idempotent is None else idempotent
        return await self._send(method, path, query, body, idempotent=safe)

    # ------------------------------------------------------------------- the request path (RequestPath)

    def _page_cap(self) -> int:
        # Per page: a stream that fails over mid-way continues with the new mode's cap at the same row.
        return self._page_cap_of(self.mode)

    def _page_cap_of(self, mode: Mode) -> int:
        caps = ENTERPRISE_PAGE_CAPS if self._core.tier == "enterprise" else PAGE_CAPS
        return caps[mode]

    @property
    def _telemetry(self) -> SessionTelemetry | None:
        return self._core.telemetry

    def _prefetch_depth(self) -> int:
        # Remote is throttled to one request at a time: reading ahead there would only queue.
        return 1 if self.mode == "remote" else 1 + self._options.read_ahead

    async def _send_operation(
        self, op: Operation, path: str, *, query: dict[str, str], body: dict[str, Any] | None
    ) -> Answer:
        warn_if_read_only(op, self._core.tier)
        try:
            return await self._send(op.method, path, query, body, idempotent=op.idempotent, op=op)
        except Unauthorized as exc:
            name_the_permission(exc, op)  # its message now names the API permission the operation needs
            raise

    async def _send(
        self,
        method: str,
        path: str,
        query: dict[str, str],
        body: dict[str, Any] | None,
        *,
        idempotent: bool,
        op: Operation | None = None,
        trace: OperationTrace | None = None,
    ) -> Answer:
        core = self._core
        if core.telemetry is not None and trace is None:  # the call's span around this very method
            with core.telemetry.operation(
                op.name if op else "", method, op.path if op else "", self._options.priority
            ) as trace:
                return await self._send(method, path, query, body, idempotent=idempotent, op=op, trace=trace)
        if core.closed:
            raise SessionClosed(f"{method} {path}: this session was closed; make a new OpenDental(...)")
        payload = encode_body(body) if body is not None else None
        if payload is not None:
            check_body_size(payload)
        # Encoded here rather than through httpx's params=: half the cost of building the request (~90 us
        # instead of ~190 us), which a worker serving hundreds of keys pays on every request.
        qs = "?" + urllib.parse.urlencode(query, quote_via=urllib.parse.quote, safe="") if query else ""
        req = Prepared(method, path, qs, payload, idempotent)
        options = self._options
        policy = options.retry
        attempts = core.attempts
        assert attempts is not None
        router = options.router
        router.maybe_fail_back(self._probe_answers)
        mode = router.mode
        # Retries stop max_total seconds after the first failure: time queued for the throttle before the first
        # attempt (minutes, on a busy read_all key) is not retry time. A wait that would end past it is not begun.
        deadline: float | None = None
        retries = 0
        front = False
        while True:
            short = None if router.confirmed(mode) else core.probe_timeout
            if trace is None:
                outcome = await attempts.run(mode, req, options.for_attempt(short), retry=front)
            else:
                outcome = await trace.attempt(
                    attempts.run, mode, req, options.for_attempt(short), retry=front
                )
            if outcome.kind not in (Kind.NOT_SENT, Kind.LOST):
                router.answered(mode)
            if outcome.kind is Kind.ANSWER:
                assert outcome.answer is not None
                if logger.isEnabledFor(logging.DEBUG):
                    logger.debug("%s %s [%s] -> %d", method, path, mode, outcome.answer.status_code)
                return outcome.answer
            deadline = deadline or time.monotonic() + policy.max_total
            nxt = router.next_after(mode)
            decision = decide(
                outcome,
                idempotent=idempotent,
                retries_done=retries,
                policy=policy,
                time_left=deadline - time.monotonic(),
                can_fail_over=nxt is not None,
                max_retry_wait=options.max_retry_wait,
            )
            why = outcome.failure or f"{outcome.status}"
            if decision.action is Action.RAISE:
                raise error_for(outcome, method, path, idempotent=idempotent) from outcome.cause
            if decision.action is Action.FAIL_OVER:
                moved = router.fail_over(mode, why)
                assert moved is not None
                if trace is not None:
                    trace.failed_over(mode, moved)
                mode, retries, front = moved, 0, False
                continue
            retries += 1
            front = decision.front
            logger.debug(
                "%s %s [%s] %s; retry %d in %.3f s", method, path, mode, why, retries, decision.delay
            )
            if decision.delay:
                await anyio.sleep(decision.delay)

    async def _probe_mode(self, mode: Mode) -> ModeReport:
        core = self._core
        cap = self._page_cap_of(mode)
        url = core.base_urls[mode]
        if mode == "remote":
            return ModeReport(
                mode,
                url,
                None,
                None,
                cap,
                True,
                False,
                "not probed: it would spend a throttled request",
            )
        attempts = core.attempts
        assert attempts is not None
        total = max(core.probe_timeout, 5.0)
        options = AttemptOptions(
            timeout=httpx2.Timeout(total, connect=core.probe_timeout),
            total=total,
            priority="interactive",
            max_retry_wait=0.0,
            max_response_bytes=1 << 20,
        )
        started = time.monotonic()
        outcome = await attempts.run(
            mode, Prepared("GET", PROBE_PATH, PROBE_QUERY, None, True), options, retry=False
        )
        took = time.monotonic() - started
        if outcome.kind in (Kind.NOT_SENT, Kind.LOST):
            return ModeReport(mode, url, False, None, cap, False, False, outcome.failure)
        error = None if outcome.kind is Kind.ANSWER else f"{outcome.status} {outcome.text}"[:300]
        up = outcome.kind is not Kind.STATUS or (outcome.status < 500 and outcome.status != 401)
        return ModeReport(mode, url, up, took, cap, False, False, error)

    async def _probe_answers(self, mode: Mode) -> bool:
        return bool((await self._probe_mode(mode)).reachable)


def _router(core: _Core, modes: tuple[Mode, ...]) -> ModeRouter:
    urls = tuple(core.base_urls[m] for m in modes)
    return core.hub.routers.get(core.key_id, modes, urls, failback_interval=core.failback_interval)
