"""The session: one customer key, its endpoints, and the path every request takes.

A request goes: arguments checked (``_operation``) → mode chosen → per-key throttle slot → HTTP → answer
classified → retried, surfaced as an exception, or decoded (``_resource``). Keys are held in a :class:`_Secret`
so that no repr, log line, traceback-with-locals or exception ever shows them.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import time
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from types import TracebackType
from typing import Any, get_args

import anyio
import httpx2
import msgspec

from ._codec import WireDecodeError, check_body_size, decode_json, encode_body, query_value, wire_value
from ._exceptions import (
    ConfigurationError,
    ConnectError,
    DecodeError,
    Throttled,
    TransportError,
    status_error_class,
)
from ._hub import Hub, default_hub
from ._operation import Operation
from ._retry import RetryPolicy, is_retryable_status, is_throttle_answer, parse_retry_after
from ._throttle import DEFAULT_IN_FLIGHT, KeyThrottle, Mode, Priority, ThrottleStats, Tier
from .resources._generated import GeneratedResources

logger = logging.getLogger("odapi_async")

MODES: tuple[Mode, ...] = get_args(Mode)
DEFAULT_ENDPOINTS = {
    "local": "http://localhost:30222/api/v1",
    "service": "http://{service_host}:30223/api/v1",
    "remote": "https://api.opendental.com/api/v1",
}
#: Rows per page each mode serves at most (Enterprise: 1000 Remote, 10 000 Local/Service).
PAGE_CAPS = {"local": 1000, "service": 1000, "remote": 100}
ENTERPRISE_PAGE_CAPS = {"local": 10_000, "service": 10_000, "remote": 1000}
#: Pages fetched ahead on unthrottled modes.
PREFETCH_PAGES = 4

# Connection failures that prove the request never reached the server, so even a POST may be sent again.
_NEVER_LEFT = (httpx2.ConnectError, httpx2.ConnectTimeout, httpx2.PoolTimeout, httpx2.UnsupportedProtocol)


# What a key may hold: printable ASCII without spaces. Anything else cannot travel in a header, and httpx2/h11 would
# then fail with a message that quotes the whole header value (the key).
_KEY_TEXT = re.compile(r"[!-~]+")


class _Secret:
    """A value that never prints."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "'***'"

    __str__ = __repr__


@dataclass(frozen=True)
class Answer:
    """A successful HTTP answer, read whole."""

    status_code: int
    content: bytes
    headers: httpx2.Headers
    method: str
    path: str
    mode: str

    def decode_error(self, reason: WireDecodeError) -> DecodeError:
        """The error to raise when this answer does not fit the expected shape."""
        return DecodeError(str(reason), method=self.method, path=self.path, mode=self.mode, body=self.content)


@dataclass(frozen=True)
class _Options:
    """Per-view settings (``with_options`` changes these and shares everything else)."""

    timeout: httpx2.Timeout
    retry: RetryPolicy
    priority: Priority


@dataclass
class _Core:
    """What every view of one session shares."""

    auth: _Secret
    keys: tuple[_Secret, ...]  # the developer and customer keys, to scrub from any text we pass on
    key_id: str
    modes: tuple[Mode, ...]
    base_urls: dict[str, str]
    tier: Tier
    intervals: dict[str, float] | None
    max_in_flight: int | None
    safety_margin: float | None
    hub: Hub
    # Sent with every request; httpx2.Headers masks Authorization in its repr (tracebacks with locals).
    headers: httpx2.Headers
    pool_size: int  # connections this key can have in use at once: its in-flight caps over its modes
    entered: int = 0  # ``async with`` blocks of this session (any view) not yet left

    def scrub(self, text: str) -> str:
        """``text`` with every key replaced by ``***`` (server texts and network errors may quote them)."""
        for key in self.keys:
            text = text.replace(key.reveal(), "***")
        return text


def key_id_for(customer_key: str) -> str:
    """An opaque, stable id for a customer key: safe to log, and the throttle's registry key."""
    return hashlib.sha256(b"odapi-async\0" + customer_key.encode()).hexdigest()[:12]


class OpenDental(GeneratedResources):
    """An Open Dental API session for one customer key.

    Every resource of the API is an attribute named by its URL segment (``od.patients``,
    ``od.procedurelogs``); :meth:`request` reaches anything the spec lacks through the same throttle, retries and
    errors. Use ``async with`` so the shared connection pool is closed when the last session leaves.
    """

    def __init__(
        self,
        developer_key: str | None = None,
        customer_key: str | None = None,
        *,
        modes: Sequence[Mode] = ("local", "service", "remote"),
        service_host: str = "localhost",
        tier: Tier = "auto",
        endpoints: Mapping[str, str] | None = None,
        timeout: float | httpx2.Timeout = 60.0,
        connect_timeout: float = 5.0,
        max_retries: int = 2,
        priority: Priority = "bulk",
        intervals: Mapping[str, float] | None = None,
        max_in_flight: int | None = None,
        safety_margin: float | None = None,
        hub: Hub | None = None,
    ) -> None:
        # Wrap the keys first, so that no raw key stays in this frame's locals (tracebacks with locals).
        given = (_Secret(developer_key or ""), _Secret(customer_key or ""))
        developer_key = customer_key = None
        dev = _read_key(given[0], "ODAPI_DEVELOPER_KEY", "developer")
        cust = _read_key(given[1], "ODAPI_CUSTOMER_KEY", "customer")
        modes = tuple(modes)
        unknown = [m for m in modes if m not in MODES]
        if not modes or unknown:
            raise ConfigurationError(f"modes must be a non-empty subset of {MODES}; got {modes!r}")
        if tier not in get_args(Tier):
            raise ConfigurationError(f"tier must be one of {get_args(Tier)}; got {tier!r}")
        if max_retries < 0:
            raise ConfigurationError("max_retries must be >= 0")
        base_urls = {m: url.format(service_host=service_host) for m, url in DEFAULT_ENDPOINTS.items()}
        for mode, url in (endpoints or {}).items():
            if mode not in MODES:
                raise ConfigurationError(f"endpoints: unknown mode {mode!r}; modes are {MODES}")
            base_urls[mode] = url
        auth = _Secret(f"ODFHIR {dev.reveal()}/{cust.reveal()}")
        self._core = _Core(
            auth=auth,
            keys=(dev, cust),
            key_id=key_id_for(cust.reveal()),
            modes=modes,
            base_urls={m: u.rstrip("/") for m, u in base_urls.items()},
            tier=tier,
            intervals=dict(intervals) if intervals else None,
            max_in_flight=max_in_flight,
            safety_margin=safety_margin,
            hub=hub or default_hub,
            headers=httpx2.Headers({"Authorization": auth.reveal(), "Content-Type": "application/json"}),
            pool_size=sum(max_in_flight or DEFAULT_IN_FLIGHT[mode] for mode in modes),
        )
        self._options = _Options(
            timeout=_make_timeout(timeout, connect_timeout),
            retry=RetryPolicy(max_retries=max_retries),
            priority=_check_priority(priority),
        )

    # ------------------------------------------------------------------------------------------ public

    def __repr__(self) -> str:
        core = getattr(self, "_core", None)
        if core is None:  # __init__ raised: a traceback shown with its locals still reprs ``self``
            return "<OpenDental (not set up)>"
        return f"<OpenDental key_id={core.key_id} mode={self.mode} tier={core.tier}>"

    async def __aenter__(self) -> OpenDental:
        self._core.hub.enter()
        self._core.entered += 1
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._core.entered:  # not already released by aclose()
            self._core.entered -= 1
            await self._core.hub.leave()

    async def aclose(self) -> None:
        """Release this session's share of the loop's connection pool.

        The pool is shared: it closes only when no other session is inside ``async with`` (closing it under them
        would break their requests in flight). Inside this session's own ``async with`` it counts as leaving.
        """
        core = self._core
        if core.entered:
            while core.entered:
                core.entered -= 1
                await core.hub.leave()
        elif core.hub.state().users == 0:
            await core.hub.aclose()

    @property
    def key_id(self) -> str:
        """An opaque id of the customer key, safe to log."""
        return self._core.key_id

    @property
    def mode(self) -> Mode:
        """The mode requests go to now."""
        return self._core.modes[0]

    def with_options(
        self,
        *,
        timeout: float | httpx2.Timeout | None = None,
        max_retries: int | None = None,
        priority: Priority | None = None,
    ) -> OpenDental:
        """A view of this session with other per-request settings; it shares keys, pool and throttle."""
        options = self._options
        if timeout is not None:
            options = replace(options, timeout=_make_timeout(timeout, options.timeout.connect or 5.0))
        if max_retries is not None:
            if max_retries < 0:
                raise ConfigurationError("max_retries must be >= 0")
            options = replace(options, retry=replace(options.retry, max_retries=max_retries))
        if priority is not None:
            options = replace(options, priority=_check_priority(priority))
        view = object.__new__(type(self))
        view._core = self._core
        view._options = options
        return view

    def throttle_stats(self) -> dict[str, ThrottleStats]:
        """This key's throttle counters, by mode (only modes that have been used)."""
        registry = self._core.hub.throttles()
        return {mode: stats for (mode, key), stats in registry.stats().items() if key == self._core.key_id}

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Mapping[str, Any] | None = None,
        idempotent: bool | None = None,
    ) -> Any:
        """Call any path (relative to ``/api/v1``) through the session's throttle, retries and errors.

        Values are sent in wire form (booleans as ``"true"``, dates as ``yyyy-MM-dd``…). ``idempotent`` defaults
        to true for GET and DELETE only. Returns the decoded JSON answer (``None`` for an empty body); an answer
        that is not JSON raises :class:`DecodeError`. A query string in ``path`` is kept (``params`` win).
        """
        method = method.upper()
        path, _, query_string = path.partition("?")
        query = dict(urllib.parse.parse_qsl(query_string, keep_blank_values=True))
        query.update({k: query_value(v, "") for k, v in (params or {}).items() if v is not None})
        body = {k: wire_value(v, "") for k, v in json.items()} if json is not None else None
        safe = method in ("GET", "DELETE") if idempotent is None else idempotent
        answer = await self._send(method, "/" + path.lstrip("/"), query, body, idempotent=safe)
        try:
            return decode_json(answer.content)
        except WireDecodeError as exc:
            raise answer.decode_error(exc) from None

    # ------------------------------------------------------------------------------ used by resources

    def _page_cap(self) -> int:
        caps = ENTERPRISE_PAGE_CAPS if self._core.tier == "enterprise" else PAGE_CAPS
        return caps[self.mode]

    def _prefetch_depth(self) -> int:
        return 1 if self.mode == "remote" else PREFETCH_PAGES

    async def _send_operation(
        self, op: Operation, path: str, *, query: dict[str, str], body: dict[str, Any] | None
    ) -> Answer:
        return await self._send(op.method, path, query, body, idempotent=op.idempotent)

    # ---------------------------------------------------------------------------------------- internals

    def _throttle(self, mode: Mode) -> KeyThrottle:
        core = self._core
        return core.hub.throttles().for_key(
            mode,
            core.key_id,
            tier=core.tier,
            intervals=core.intervals,
            max_in_flight=core.max_in_flight,
            safety_margin=core.safety_margin,
        )

    async def _send(
        self,
        method: str,
        path: str,
        query: dict[str, str],
        body: dict[str, Any] | None,
        *,
        idempotent: bool,
    ) -> Answer:
        payload = encode_body(body) if body is not None else None
        if payload is not None:
            check_body_size(payload)
        mode = self.mode
        url = self._core.base_urls[mode] + path
        if query:
            # Encoded here rather than through httpx's params=: half the cost of building the request
            # (~90 us instead of ~190 us), which a worker serving hundreds of keys pays on every request.
            url += "?" + urllib.parse.urlencode(query, quote_via=urllib.parse.quote, safe="")
        headers = self._core.headers  # built once per session; its repr masks Authorization
        throttle = self._throttle(mode)
        client = self._core.hub.client(self._core.key_id, max_connections=self._core.pool_size)
        policy = self._options.retry
        # Retries stop max_total seconds after the first failure: time queued for the throttle before the first
        # attempt (minutes, on a busy read_all key) is not retry time. A wait that would end past it is not begun.
        deadline: float | None = None
        attempt = 0
        while True:
            retry_after: float | None = None
            failure: httpx2.RequestError | None = None
            try:
                async with throttle.slot(self._options.priority, retry=attempt > 0) as slot:
                    request = client.build_request(
                        method,
                        url,
                        content=payload,
                        headers=headers,
                        timeout=self._options.timeout,
                        # On a spaced (Remote) key the spacing counts from when the request really left.
                        extensions={"trace": slot.trace} if throttle.interval else None,
                    )
                    response = await client.send(request)
                    try:
                        content = await response.aread()
                    finally:
                        await response.aclose()
            except httpx2.RequestError as exc:
                failure = self._sanitized(exc)
            if failure is not None:
                # Handled outside the except block, so the original exception (its request carries the
                # Authorization header, its traceback frames hold it in locals) is neither cause nor context.
                deadline = deadline or time.monotonic() + policy.max_total
                never_left = isinstance(failure, _NEVER_LEFT)
                error_cls = ConnectError if never_left else TransportError
                error = error_cls(
                    f"{method} {path} [{mode}]: {type(failure).__name__}: {failure}",
                    method=method,
                    path=path,
                    mode=mode,
                )
                if (idempotent or never_left) and attempt < policy.max_retries:
                    delay = policy.delay(attempt + 1)
                    if time.monotonic() + delay <= deadline:
                        attempt += 1
                        await self._backoff(method, path, mode, attempt, delay, type(failure).__name__)
                        continue
                raise error from failure
            status = response.status_code
            logger.debug("%s %s [%s] -> %d (attempt %d)", method, path, mode, status, attempt + 1)
            if status < 400:
                return Answer(status, content, response.headers, method, path, mode)
            text = self._core.scrub(_explanation(content))
            content = b""  # a server that echoes the key must not leave it in this frame's locals
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            deadline = deadline or time.monotonic() + policy.max_total
            if is_throttle_answer(status, text):
                # Refused, not executed: safe to send again whatever the operation. The throttle holds the key
                # for Retry-After (or one interval) and learns the tier when it is "auto".
                throttle.report_throttled(retry_after)
                if attempt < policy.max_retries and time.monotonic() + (retry_after or 0.0) <= deadline:
                    attempt += 1
                    logger.debug("%s %s [%s] throttled; retry %d", method, path, mode, attempt)
                    continue
                raise Throttled(
                    status_code=status,
                    method=method,
                    path=path,
                    mode=mode,
                    explanation=text,
                    retry_after=retry_after,
                )
            if idempotent and is_retryable_status(status, text) and attempt < policy.max_retries:
                delay = policy.delay(attempt + 1, retry_after)
                if time.monotonic() + delay <= deadline:
                    attempt += 1
                    await self._backoff(method, path, mode, attempt, delay, str(status))
                    continue
            raise status_error_class(status)(
                status_code=status, method=method, path=path, mode=mode, explanation=text
            )

    def _sanitized(self, exc: httpx2.RequestError) -> httpx2.RequestError:
        """A copy of an httpx2 error safe to chain: same type, message without keys, no request, no traceback."""
        message = self._core.scrub(str(exc))
        try:
            return type(exc)(message)
        except Exception:  # a subclass with another signature
            return httpx2.TransportError(message)

    async def _backoff(self, method: str, path: str, mode: str, attempt: int, delay: float, why: str) -> None:
        logger.debug("%s %s [%s] %s; retry %d in %.3f s", method, path, mode, why, attempt, delay)
        await anyio.sleep(delay)


def _read_key(given: _Secret, env: str, what: str) -> _Secret:
    """The key from the argument or the environment, checked; errors never quote it."""
    secret = _Secret((given.reveal() or os.environ.get(env) or "").strip())
    if not secret.reveal():
        raise ConfigurationError(f"no {what} key: pass {what}_key= or set {env}")
    if not _KEY_TEXT.fullmatch(secret.reveal()):
        raise ConfigurationError(
            f"the {what} key holds characters an HTTP header cannot carry (spaces, control characters or "
            "non-ASCII): check how it was read"
        )
    return secret


def _explanation(content: bytes) -> str:
    """The server's plain-text reason (also when it arrives as a JSON string)."""
    text = content.decode("utf-8", "replace").strip()
    if text.startswith('"') and text.endswith('"'):
        try:
            decoded = msgspec.json.decode(text)
        except msgspec.DecodeError:
            return text
        return decoded if isinstance(decoded, str) else text
    return text


def _make_timeout(timeout: float | httpx2.Timeout, connect: float) -> httpx2.Timeout:
    if isinstance(timeout, httpx2.Timeout):
        return timeout
    return httpx2.Timeout(timeout, connect=min(connect, timeout))


def _check_priority(priority: str) -> Priority:
    if priority not in get_args(Priority):
        raise ConfigurationError(f"priority must be one of {get_args(Priority)}; got {priority!r}")
    return priority  # type: ignore[return-value]
