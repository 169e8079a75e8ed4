"""The session: one customer key, its endpoints, and the request loop its views share.

:class:`OpenDental` checks its arguments once, registers the key with the throttle, and builds the view's
:class:`~odapi_async._request.loop.RequestLoop` (the loop every request takes: ``docs/architecture.md`` draws it),
which is what its resources are handed. Keys are held in a :class:`Secret` so that no repr, log line,
traceback-with-locals or exception ever shows them.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from types import TracebackType
from typing import Any, TypeVar, overload

import httpx2

from odapi_async._arguments import (
    check_count,
    check_modes,
    check_positive,
    check_priority,
    check_url,
    default_modes,
    make_timeout,
    read_key,
    text_or_empty,
)
from odapi_async._display import StatsTable
from odapi_async._exceptions import ConfigurationError, SessionClosed, Unauthorized
from odapi_async._hub import Hub, default_hub
from odapi_async._raw import RawRequests, reader_for
from odapi_async._request.attempt import AttemptRunner
from odapi_async._request.interface import Answer, decode_or_raise
from odapi_async._request.loop import RequestLoop
from odapi_async._request.options import (
    CONNECT_TIMEOUT,
    MAX_RESPONSE_BYTES,
    READ_AHEAD,
    RequestOptions,
    total_deadline,
)
from odapi_async._request.retry import RetryPolicy
from odapi_async._request.routing import PROBE_PATH, ModeReport, ModeRouter
from odapi_async._request.telemetry import SessionTelemetry, Telemetry, session_telemetry
from odapi_async._settings import (
    MODES,
    TIERS,
    KeySettings,
    Mode,
    Priority,
    Tier,
    in_flight_for,
)
from odapi_async._throttle.backend import ThrottleBackend
from odapi_async._util.redact import Secret, scrub
from odapi_async.resources._generated import GeneratedResources

__all__ = ["Answer", "OpenDental", "key_id_for"]

_R = TypeVar("_R")

DEFAULT_ENDPOINTS = {
    "local": "http://localhost:30222/api/v1",
    "service": "http://{service_host}:30223/api/v1",
    "remote": "https://api.opendental.com/api/v1",
}


@dataclass(eq=False)
class _Core:
    """What every view of one session shares (the request loop reads it as its ``SessionState``)."""

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
    attempts: AttemptRunner  # also the session's mark on the connection pools
    entered: int = 0  # ``async with`` blocks of the session (not its views) not yet left
    closed: bool = False
    telemetry: SessionTelemetry | None = None  # None: off (docs/observability.md)


def _scrub_keys(keys: tuple[Secret, ...], text: str) -> str:
    """``text`` with every key replaced by ``***`` (server texts and network errors may quote them)."""
    return scrub(text, (key.reveal() for key in keys))


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

    _requests: RequestLoop  # this view's: what its resources are handed

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
        connect_timeout: float = CONNECT_TIMEOUT,
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
        keys = (dev, cust)
        urls = {m: u.rstrip("/") for m, u in base_urls.items()}
        traced = session_telemetry(hub.telemetry if telemetry is None else telemetry, key_id, urls)
        attempts = AttemptRunner(
            backend=backend if traced is None else traced.throttle(backend),
            pools=hub.pools,
            key_id=key_id,
            base_urls=urls,
            # httpx2.Headers masks Authorization in its repr (tracebacks with locals).
            headers=httpx2.Headers({"Authorization": auth.reveal(), "Content-Type": "application/json"}),
            scrub=functools.partial(_scrub_keys, keys),
            keys=keys,
            pool_size=pool_size,
        )
        core = _Core(
            auth=auth,
            keys=keys,
            key_id=key_id,
            tier=tier,
            hub=hub,
            backend=backend,
            base_urls=urls,
            probe_timeout=check_positive("probe_timeout", probe_timeout),
            failback_interval=check_positive("failback_interval", failback_interval, zero=True),
            pool_size=pool_size,
            attempts=attempts,
            telemetry=traced,
        )
        self._core = core
        self._owner = True  # views made by with_options do not close the session
        options = RequestOptions(
            timeout=make_timeout(timeout, connect_timeout),
            total=check_positive("timeout", total_deadline(timeout)),
            retry=RetryPolicy(max_retries=check_count("max_retries", max_retries)),
            priority=check_priority(priority),
            max_retry_wait=check_positive("max_retry_wait", max_retry_wait, zero=True),
            max_response_bytes=check_count("max_response_bytes", max_response_bytes, least=1),
            read_ahead=check_count("read_ahead", read_ahead),
        )
        self._requests = RequestLoop(core, _router(core, modes), options)

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
        await core.hub.pools.release(core.attempts)

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
        return self._requests.router.mode

    @property
    def modes(self) -> tuple[Mode, ...]:
        """The cascade order of this session (or view)."""
        return self._requests.router.modes

    async def probe(self) -> dict[Mode, ModeReport]:
        """Probe every Local/Service mode of the cascade now and report on each mode (Remote is not probed).

        A higher mode that answers is used again at once; the mode in use that does not answer is left. A 401
        raises :class:`Unauthorized` (a wrong key is wrong everywhere).
        """
        router = self._requests.router
        reports: dict[Mode, ModeReport] = {}
        for mode in router.modes:
            report = await self._requests.probe(mode)
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
        options = self._requests.options
        router = _router(self._core, check_modes(modes)) if modes is not None else None
        if read_ahead is not None:
            options = replace(options, read_ahead=check_count("read_ahead", read_ahead))
        if timeout is not None:
            total = check_positive("timeout", total_deadline(timeout))
            options = replace(options, timeout=make_timeout(timeout, options.connect_timeout), total=total)
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
        view._requests = self._requests.with_options(options, router)
        return view

    def throttle_stats(self) -> StatsTable:
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
        return decode_or_raise(
            await self._requests.request_answer(method, path, params, json, idempotent), read
        )

    @property
    def with_raw_response(self) -> RawRequests:
        """``await od.with_raw_response.request(...)``: the answer's status, headers and body, undecoded."""
        return RawRequests(self._requests.request_answer, self)


def _router(core: _Core, modes: tuple[Mode, ...]) -> ModeRouter:
    urls = tuple(core.base_urls[m] for m in modes)
    return core.hub.routers.get(core.key_id, modes, urls, failback_interval=core.failback_interval)
