"""The request loop: one view's way from a request to its answer, through throttle, retries and failover.

A request goes: encoded once (:class:`~odapi_async._request.interface.Prepared`) → for each attempt, the mode in
use (``routing``) → one attempt (``attempt``: throttle slot, pool, send, read) → an outcome → the decision
(``decide``: retry, fail over, raise). The session builds one :class:`RequestLoop` per view (``with_options``
makes another, with its options and router) and hands it, not itself, to the resources, the paginator's fetches
and the raw escape hatch: its public methods are the whole seam (``interface.RequestPath``).
"""

from __future__ import annotations

import logging
import time
import urllib.parse
from collections.abc import Mapping
from typing import Any, Protocol

import anyio

from odapi_async._arguments import check_request_path
from odapi_async._codec import check_body_size, encode_body, query_value, wire_value
from odapi_async._exceptions import SessionClosed, Unauthorized
from odapi_async._operation import Operation
from odapi_async._request.attempt import AttemptRunner, Kind
from odapi_async._request.decide import Action, decide, error_for
from odapi_async._request.interface import Answer, Prepared
from odapi_async._request.options import RequestOptions
from odapi_async._request.permissions import name_the_permission, warn_if_read_only
from odapi_async._request.routing import ModeReport, ModeRouter, probe_mode
from odapi_async._request.telemetry import OperationTrace, SessionTelemetry
from odapi_async._settings import Mode, Tier

__all__ = ["ENTERPRISE_PAGE_CAPS", "PAGE_CAPS", "RequestLoop", "SessionState", "page_cap"]

logger = logging.getLogger("odapi_async")

#: Rows per page each mode serves at most (Enterprise: 1000 Remote, 10 000 Local/Service).
PAGE_CAPS = {"local": 1000, "service": 1000, "remote": 100}
ENTERPRISE_PAGE_CAPS = {"local": 10_000, "service": 10_000, "remote": 1000}


def page_cap(tier: Tier, mode: Mode) -> int:
    """The most rows one page of ``mode`` holds for a key of ``tier``."""
    return (ENTERPRISE_PAGE_CAPS if tier == "enterprise" else PAGE_CAPS)[mode]


class SessionState(Protocol):
    """What every view of one session shares and the loop reads (the session's core)."""

    @property
    def closed(self) -> bool: ...

    @property
    def attempts(self) -> AttemptRunner: ...

    @property
    def tier(self) -> Tier: ...

    @property
    def base_urls(self) -> dict[str, str]: ...

    @property
    def probe_timeout(self) -> float: ...

    @property
    def telemetry(self) -> SessionTelemetry | None: ...


class RequestLoop:
    """Sends one view's requests: its options, its router, the session's shared state."""

    __slots__ = ("_state", "options", "router")

    def __init__(self, state: SessionState, router: ModeRouter, options: RequestOptions) -> None:
        self._state = state
        self.router = router
        self.options = options

    def with_options(self, options: RequestOptions, router: ModeRouter | None = None) -> RequestLoop:
        """The loop of a view with other options (and, given one, another router)."""
        return RequestLoop(self._state, router or self.router, options)

    # ------------------------------------------------------------------ what the resources are handed

    @property
    def mode(self) -> Mode:
        """The mode requests go to now."""
        return self.router.mode

    def page_cap(self) -> int:
        # Per page: a stream that fails over mid-way continues with the new mode's cap at the same row.
        return page_cap(self._state.tier, self.mode)

    def read_ahead_depth(self) -> int:
        # Remote is throttled to one request at a time: reading ahead there would only queue.
        return 1 if self.mode == "remote" else 1 + self.options.read_ahead

    @property
    def telemetry(self) -> SessionTelemetry | None:
        """The session's telemetry when it is on (docs/observability.md), else None."""
        return self._state.telemetry

    async def send_operation(
        self, op: Operation, path: str, *, query: dict[str, str], body: dict[str, Any] | None
    ) -> Answer:
        """Send one generated operation (its arguments checked and built by the resource)."""
        warn_if_read_only(op, self._state.tier)
        try:
            return await self.send(op.method, path, query, body, idempotent=op.idempotent, op=op)
        except Unauthorized as exc:
            name_the_permission(exc, op)  # its message now names the API permission the operation needs
            raise

    async def request_answer(
        self,
        method: str,
        path: str,
        params: Mapping[str, Any] | None,
        json: Mapping[str, Any] | None,
        idempotent: bool | None,
    ) -> Answer:
        """The escape hatch's request (``od.request``, ``od.with_raw_response``): any path, its answer whole."""
        method = method.upper()
        path, _, query_string = path.partition("?")
        path = check_request_path(path)
        query = dict(urllib.parse.parse_qsl(query_string, keep_blank_values=True))
        query.update({k: query_value(v, "") for k, v in (params or {}).items() if v is not None})
        body = {k: wire_value(v, "") for k, v in json.items()} if json is not None else None
        safe = method in ("GET", "DELETE") if idempotent is None else idempotent
        return await self.send(method, path, query, body, idempotent=safe)

    # ------------------------------------------------------------------------------------ the loop

    async def send(
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
        """Send until an answer, a decision to raise, or the retry budget ends (``docs/architecture.md``)."""
        core = self._state  # the session's core (a traceback with locals shows it, keys masked)
        if core.telemetry is not None and trace is None:  # the call's span around this very method
            with core.telemetry.operation(
                op.name if op else "", method, op.path if op else "", self.options.priority
            ) as trace:
                return await self.send(method, path, query, body, idempotent=idempotent, op=op, trace=trace)
        if core.closed:
            raise SessionClosed(f"{method} {path}: this session was closed; make a new OpenDental(...)")
        payload = encode_body(body) if body is not None else None
        if payload is not None:
            check_body_size(payload)
        # Encoded here rather than through httpx's params=: half the cost of building the request (~90 us
        # instead of ~190 us), which a worker serving hundreds of keys pays on every request.
        qs = "?" + urllib.parse.urlencode(query, quote_via=urllib.parse.quote, safe="") if query else ""
        req = Prepared(method, path, qs, payload, idempotent)
        options = self.options
        policy = options.retry
        attempts = core.attempts
        router = self.router
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
                outcome = await attempts.run(mode, req, options.with_connect(short), retry=front)
            else:
                outcome = await trace.attempt(
                    attempts.run, mode, req, options.with_connect(short), retry=front
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

    # ------------------------------------------------------------------------------------ probing

    async def probe(self, mode: Mode) -> ModeReport:
        """Probe one mode of this key now (``routing.probe_mode``); the router is not changed here."""
        state = self._state
        return await probe_mode(
            state.attempts,
            mode,
            state.base_urls[mode],
            page_cap=page_cap(state.tier, mode),
            probe_timeout=state.probe_timeout,
        )

    async def _probe_answers(self, mode: Mode) -> bool:
        return bool((await self.probe(mode)).reachable)
