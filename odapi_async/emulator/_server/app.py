"""The ASGI app of one listener: auth, throttle, faults, validation, then the handlers; plus admin routes.

Order of checks for ``/api/v1/...`` (each step can answer on its own):
auth (401) -> remote throttle (429) -> injected faults (latency, reset, 504, eConnector 400) -> route (404,
400 for DELETE where the docs have none) -> deprecated (410) -> Content-Type/body (400) -> parameters (400)
-> handler (200/201/400/404) -> faults after execution (reset or 504 in place of the answer).
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import re
import socket
import sqlite3
import struct
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import msgspec
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from odapi_async.emulator._api.actions import ACTIONS
from odapi_async.emulator._api.handlers import Handlers, Reply, prepare
from odapi_async.emulator._practice.db import ApiError, Practice
from odapi_async.emulator._server.events import EventFirer
from odapi_async.emulator._server.faults import FaultInjector, Faults
from odapi_async.emulator._server.http import json_answer, plain
from odapi_async.emulator._server.stats import Stats, key_id
from odapi_async.emulator._server.throttle import RemoteThrottle, retry_after_header

LISTENERS: tuple[str, ...] = ("local", "service", "remote")
#: The docs' body limit ("about 16.8 million characters").
MAX_BODY_CHARS = 16_800_000
#: The most bytes such a body can take in UTF-8: beyond this nothing more is read.
MAX_BODY_BYTES = 4 * MAX_BODY_CHARS
#: How deep arrays and objects may nest in a body (the documented bodies nest two or three levels).
MAX_BODY_DEPTH = 64
#: A JSON string (skipped whole) or one bracket.
_JSON_NESTING = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{}]')
#: Scope extension under which the HTTP protocol exposes a hard connection abort (see ``_server.listeners``).
ABORT_EXTENSION = "odapi.abort"
#: Scope extension under which the HTTP protocol gives the ``time.monotonic()`` at which the request's first bytes
#: were read: the throttle's arrival, so a request that waits for a busy event loop is not counted as early.
ARRIVAL_EXTENSION = "odapi.arrival"
API_PREFIX = "/api/v1"
TIMEOUT_TEXT = "The request did not complete within the time limit."

_log = logging.getLogger("odapi_async.emulator")


def page_cap(listener: str, tier: str) -> int:
    """Rows per page: remote 100, local/service 1000; the Enterprise tier raises both tenfold."""
    base = 100 if listener == "remote" else 1000
    return base * 10 if tier == "enterprise" else base


@dataclass
class EmulatorState:
    """State shared by the three listeners of one emulator."""

    practice: Practice
    developer_key: str
    customer_keys: dict[str, str]
    throttle: RemoteThrottle
    injectors: dict[str, FaultInjector]
    stats: Stats
    handlers: Handlers
    events: EventFirer  # serves /subscriptions and fires their webhooks
    #: required on the admin routes (``Authorization: Bearer <token>``) when set; see ``Emulator(admin_token=)``
    admin_token: str | None = None
    #: send Retry-After with milliseconds (opt-in for fast tests) instead of whole seconds (RFC 9110)
    fractional_retry_after: bool = False
    #: set by the Emulator: (listener, up) -> awaitable, so the admin route can stop/start listeners
    set_listener_up: Callable[[str, bool], Awaitable[None]] | None = None
    #: API permission groups granted per customer key; a key not listed has them all (``Emulator(permissions=)``)
    permissions: dict[str, frozenset[str]] = field(default_factory=dict)

    @classmethod
    def create(
        cls,
        practice: Practice,
        *,
        developer_key: str,
        customer_keys: dict[str, str],
        intervals: dict[str, float] | None,
        faults: dict[str, Faults] | None,
        seed: int,
        history: int,
        fractional_retry_after: bool = False,
        admin_token: str | None = None,
    ) -> EmulatorState:
        faults = faults or {}
        return cls(
            practice=practice,
            developer_key=developer_key,
            customer_keys=customer_keys,
            throttle=RemoteThrottle(intervals),
            injectors={
                name: FaultInjector(faults.get(name), seed=seed * 1000 + i)
                for i, name in enumerate(LISTENERS)
            },
            stats=Stats(LISTENERS, history),
            handlers=Handlers(practice, ACTIONS),
            fractional_retry_after=fractional_retry_after,
            admin_token=admin_token,
            events=EventFirer(practice),
        )


class _Abort(Response):
    """No response at all: reset the connection (RST) and wait until the server notices."""

    def __init__(self) -> None:
        super().__init__(status_code=500)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        abort = scope.get("extensions", {}).get(ABORT_EXTENSION)
        if abort is None:  # not served by our protocol: the best we can do is an empty 500
            await super().__call__(scope, receive, send)
            return
        abort()
        while (await receive())["type"] != "http.disconnect":
            pass


def _auth(state: EmulatorState, header: str | None) -> str:
    """Return the customer key, or raise ApiError(401). Messages never repeat a key."""
    if not header:
        raise ApiError(401, "The Authorization header is missing.")
    scheme, _, creds = header.partition(" ")
    if scheme != "ODFHIR" or "/" not in creds:
        raise ApiError(401, "The Authorization header must read 'ODFHIR {DeveloperKey}/{CustomerKey}'.")
    dev, _, cust = creds.strip().partition("/")
    if dev != state.developer_key:
        raise ApiError(401, "The developer key is not valid.")
    if cust not in state.customer_keys:
        raise ApiError(401, "The customer key is not valid or has been disabled.")
    return cust


def _too_deep(raw: bytes) -> bool:
    """Whether arrays and objects nest deeper than :data:`MAX_BODY_DEPTH` (outside strings).

    Checked before decoding: the decoder would recurse once per level and, thousands deep, hit Python's
    recursion limit. Only bodies with many brackets are scanned, bracket by bracket (strings skipped whole).
    """
    if raw.count(b"[") + raw.count(b"{") <= MAX_BODY_DEPTH:
        return False
    depth = 0
    for match in _JSON_NESTING.finditer(raw):
        token = match.group()
        if token in (b"[", b"{"):
            depth += 1
            if depth > MAX_BODY_DEPTH:
                return True
        elif token in (b"]", b"}"):
            depth -= 1
    return False


def _parse_body(request: Request, raw: bytes) -> Any:
    ctype = request.headers.get("content-type", "")
    if not ctype.split(";")[0].strip().lower() == "application/json":
        raise ApiError(400, "Content-Type must be application/json.")
    if len(raw) > MAX_BODY_CHARS and len(raw.decode("utf-8", "replace")) > MAX_BODY_CHARS:
        raise ApiError(400, f"The request body is larger than {MAX_BODY_CHARS} characters.")
    if not raw.strip():
        return None
    if _too_deep(raw):
        raise ApiError(400, "The request body is nested too deeply.")
    try:
        body = msgspec.json.decode(raw)
    except msgspec.DecodeError as exc:  # msgspec says where, never what (no body text in the answer)
        raise ApiError(400, f"The request body is not valid JSON: {str(exc)[:80]}.") from None
    except RecursionError:  # arrays in arrays, ten thousand deep
        raise ApiError(400, "The request body is nested too deeply.") from None
    if not isinstance(body, dict):  # null, [], a number: never "no body" (which is an empty request)
        raise ApiError(400, "The request body must be a JSON object.")
    return body


async def read_body(request: Request) -> bytes:
    """Read the body, refusing it as soon as it passes the most bytes the docs' limit allows (4 per character).

    Starlette keeps what this reads, so later ``request.body()`` calls answer from memory.
    """
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise ApiError(400, f"The request body is larger than {MAX_BODY_CHARS} characters.")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise ApiError(400, f"The request body is larger than {MAX_BODY_CHARS} characters.")
        chunks.append(chunk)
    body = b"".join(chunks)
    request._body = body  # Starlette's own cache of the body (what request.body() returns from now on)
    return body


def op_label(request: Request) -> str:
    """The request's path for a log line: the route's shape, without keys or query values (patient data)."""
    parts = [p for p in request.url.path.split("/") if p]
    return "/" + "/".join("{n}" if p.isdigit() else p[:40] for p in parts)


def build_app(state: EmulatorState, listener: str) -> Starlette:
    """The Starlette app served by one listener."""
    counters = state.stats.listeners[listener]
    injector = state.injectors[listener]
    cat = state.practice.cat
    remote = listener == "remote"

    def _reply(reply: Reply) -> Response:
        return Response(
            reply.body, status_code=reply.status, headers=reply.headers, media_type=reply.media_type
        )

    async def dispatch(request: Request, cust: str, tier: str) -> Response:
        stats_key = state.stats.for_key(key_id(cust), listener, tier)
        if request.method in ("POST", "PUT"):
            # The server has the whole request before it starts executing: a client that gives up during the
            # execution (latency) does not stop it, so read the body now (Starlette keeps it for later).
            try:
                await read_body(request)
            except ClientDisconnect:
                return plain(400, "The request body was not received.")
            except ApiError as exc:
                return plain(exc.status, exc.message)
        delay, outcome = injector.draw()
        if delay > 0:
            counters.faults["latency"] += 1
            stats_key.counters.faults["latency"] += 1
            await asyncio.sleep(delay)
        if outcome is not None:
            counters.faults[outcome] += 1
            stats_key.counters.faults[outcome] += 1
            if outcome == "reset":
                return _Abort()
            if outcome == "504":
                return plain(504, TIMEOUT_TEXT)
            if outcome == "econnector":
                return plain(400, "The eConnector is not running at this office. Try again later.")
        response = await execute(request, cust, tier)
        if outcome == "reset_after":  # executed and committed; the answer is lost on the way back
            return _Abort()
        if outcome == "504_after":  # executed and committed; the gateway gave up waiting for it
            return plain(504, TIMEOUT_TEXT)
        return response

    async def execute(request: Request, cust: str, tier: str) -> Response:
        try:
            parts = [p for p in request.url.path[len(API_PREFIX) :].split("/") if p]
            if request.method in ("OPTIONS", "TRACE"):
                allowed = cat.methods_at(parts)
                if not allowed:
                    raise ApiError(404, f"No API method matches {request.url.path}.")
                return plain(405, f"{request.method} is not supported here.", {"Allow": ", ".join(allowed)})
            op, value, other = cat.match(request.method, parts)
            if op is None:
                res = cat.resources.get(parts[0].lower()) if parts else None
                if request.method == "DELETE" and res is not None and res.has_table and len(parts) == 2:
                    detail = f" {res.note}" if res.note and "DELETE" in res.note else ""
                    raise ApiError(400, f"{res.name} cannot be deleted through the API.{detail}")
                if other:  # the docs list only 400/401/404: an undocumented method on a known path is a 404
                    raise ApiError(404, f"{request.method} is not supported on {request.url.path}.")
                raise ApiError(404, f"No API method matches {request.method} {request.url.path}.")
            if op.deprecated:
                raise ApiError(410, f"{op.method} {op.path} is deprecated and no longer available.")
            granted = state.permissions.get(cust)
            if granted is not None and op.permission not in granted:
                # The docs: a missing API permission is a 401 (the text is the emulator's own).
                raise ApiError(
                    401, f"This customer key does not have the API permission for {op.method} {op.path}."
                )
            body = None
            if request.method in ("POST", "PUT"):
                body = _parse_body(request, await request.body())
            elif request.headers.get("content-type") and not request.headers[
                "content-type"
            ].lower().startswith("application/json"):
                raise ApiError(400, "Content-Type must be application/json.")
            call = prepare(
                op,
                listener=listener,
                cap=page_cap(listener, tier),
                key=value,
                query=list(request.query_params.multi_items()),
                body=body,
                base_url=f"{request.url.scheme}://{request.url.netloc}{API_PREFIX}",
            )
            if op.resource.segment == "subscriptions":
                return _reply(state.events.subscriptions(call, cust))
            return _reply(state.handlers.handle(call))
        except ApiError as exc:
            return plain(exc.status, exc.message)
        except sqlite3.Error as exc:
            # a write the data does not allow (the real server answers such cases with a 400 explanation)
            return plain(400, f"The request could not be applied: {exc}.")
        except Exception as exc:  # a defect of the emulator: answer it, keep serving the others
            _log.warning("internal error on %s %s: %s", request.method, op_label(request), type(exc).__name__)
            _log.debug("internal error", exc_info=True)
            return plain(500, f"The emulator failed on this request ({type(exc).__name__}).")

    async def api(request: Request) -> Response:
        arrival = request.scope.get("extensions", {}).get(ARRIVAL_EXTENSION) or time.monotonic()
        counters.requests += 1
        try:
            cust = _auth(state, request.headers.get("authorization"))
        except ApiError as exc:
            counters.unauthorized += 1
            return _count(plain(exc.status, exc.message))
        tier = state.customer_keys[cust]
        stats_key = state.stats.for_key(key_id(cust), listener, tier)
        stats_key.counters.requests += 1
        stats_key.arrivals.append(arrival)
        if remote:
            wait = state.throttle.admit(cust, tier, arrival)
            if wait is not None:
                counters.violations += 1
                stats_key.counters.violations += 1
                response = plain(
                    429,
                    "Too many requests: this customer key is throttled on the Remote API. Wait and retry.",
                    {"Retry-After": retry_after_header(wait, fractional=state.fractional_retry_after)},
                )
                return _count(response, stats_key.counters.statuses)
        stats_key.accepted.append(arrival)
        try:
            response = await dispatch(request, cust, tier)
        finally:
            if remote:
                state.throttle.release(cust)
        return _count(response, stats_key.counters.statuses)

    def _count(response: Response, per_key: dict[int, int] | None = None) -> Response:
        code = response.status_code if not isinstance(response, _Abort) else 0
        counters.statuses[code] = counters.statuses.get(code, 0) + 1
        if per_key is not None:
            per_key[code] = per_key.get(code, 0) + 1
        return response

    async def stats_route(request: Request) -> Response:
        snap = state.stats.snapshot()
        snap["now"] = time.monotonic()
        snap["faults"] = {name: inj.faults.as_dict() for name, inj in state.injectors.items()}
        return json_answer(snap)

    async def faults_route(request: Request) -> Response:
        if request.method == "PUT":
            try:
                body = msgspec.json.decode(await request.body())
                target = body.pop("listener", listener)
                state.injectors[target].update(**body)
            except (msgspec.DecodeError, KeyError, ValueError, TypeError, AttributeError) as exc:
                return plain(400, f"Bad fault settings: {exc}")
        out = {name: inj.faults.as_dict() for name, inj in state.injectors.items()}
        return json_answer(out)

    async def listener_route(request: Request) -> Response:
        name = request.path_params["name"]
        set_up = state.set_listener_up
        if name not in LISTENERS or set_up is None:
            return plain(404, f"No listener named {name!r}.")
        try:
            up = bool(msgspec.json.decode(await request.body())["up"])
        except (msgspec.DecodeError, KeyError, TypeError):
            return plain(400, 'Send {"up": true} or {"up": false}.')
        if name == listener and not up:
            # stopping ourselves: answer first, then go down
            asyncio.get_running_loop().call_later(0.05, lambda: asyncio.ensure_future(set_up(name, False)))
        else:
            await set_up(name, up)
        return json_answer({"listener": name, "up": up})

    async def reset_stats(request: Request) -> Response:
        state.stats.reset()
        return Response(b"{}", media_type="application/json")

    async def openapi_route(request: Request) -> Response:
        """The API's OpenAPI 3.1 document with this listener as its server (for schemathesis and the like)."""
        from odapi_async.emulator._catalog.openapi import openapi_document

        return json_answer(openapi_document(f"{request.url.scheme}://{request.url.netloc}{API_PREFIX}"))

    def admin(route: Callable[[Request], Awaitable[Response]]) -> Callable[[Request], Awaitable[Response]]:
        """Refuse an admin call without the admin token, when the emulator has one."""

        async def guarded(request: Request) -> Response:
            token = state.admin_token
            if token is not None:
                scheme, _, given = request.headers.get("authorization", "").partition(" ")
                if scheme.lower() != "bearer" or not hmac.compare_digest(
                    given.strip().encode(), token.encode()
                ):
                    return plain(401, "The admin routes need 'Authorization: Bearer <admin token>'.")
            return await route(request)

        return guarded

    methods = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "TRACE"]
    return Starlette(
        routes=[
            Route(API_PREFIX + "/{path:path}", api, methods=methods),
            Route(API_PREFIX, api, methods=methods),
            Route("/_emulator/openapi.json", openapi_route, methods=["GET"]),
            Route("/_emulator/stats", admin(stats_route), methods=["GET"]),
            Route("/_emulator/stats/reset", admin(reset_stats), methods=["POST"]),
            Route("/_emulator/faults", admin(faults_route), methods=["GET", "PUT"]),
            Route("/_emulator/listeners/{name}", admin(listener_route), methods=["PUT"]),
            *[Route(r.path, admin(r.endpoint), methods=r.methods) for r in state.events.routes()],
        ]
    )


def hard_abort(transport: Any) -> None:
    """Close a connection with a TCP reset (SO_LINGER 0), not a clean FIN."""
    sock = transport.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
    transport.abort()
