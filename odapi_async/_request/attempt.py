"""One attempt of a request on one mode, and what came of it (an :class:`Outcome`, never an exception).

An attempt takes the key's throttle slot, fetches the key's pool for the running loop (never reused across
attempts: a retry may run after the pool was closed and reopened), sends, and reads the whole answer within a
total deadline and a size cap. What to do next (retry, fail over, raise) is decided elsewhere
(``_request/decide.py``, with the backoff policy of ``_request/retry.py``); see ``docs/architecture.md``, "The
request path".
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx2
import msgspec

from odapi_async._exceptions import ResponseTooLarge
from odapi_async._request.deadline import deadline
from odapi_async._request.interface import Answer, Prepared
from odapi_async._request.options import RequestOptions
from odapi_async._request.pools import ConnectionPools
from odapi_async._request.retry import is_throttle_answer, parse_retry_after
from odapi_async._settings import Mode
from odapi_async._throttle.backend import ThrottleBackend
from odapi_async._util.redact import Secret

__all__ = ["AttemptRunner", "Kind", "Outcome"]

# Connection failures that prove the request never reached the server, so even a POST may be sent again.
_NEVER_LEFT = (httpx2.ConnectError, httpx2.ConnectTimeout, httpx2.PoolTimeout, httpx2.UnsupportedProtocol)


class Kind(enum.Enum):
    ANSWER = "answer"  # a 2xx
    THROTTLED = "throttled"  # refused as too soon: 429, or a 400/503 whose text says so
    STATUS = "status"  # any other status >= 300
    NOT_SENT = "not_sent"  # failed before the request left: nothing reached the server
    LOST = "lost"  # failed after it may have left: the server may have run it


@dataclass(frozen=True)
class Outcome:
    """What one attempt came to."""

    kind: Kind
    mode: Mode
    answer: Answer | None = None
    status: int = 0
    text: str = ""  # the server's explanation, keys scrubbed
    retry_after: float | None = None
    real_429: bool = False  # a throttle status, not a guess from text: only this may re-send a write
    failure: str = ""  # "ConnectError: …", keys scrubbed
    timed_out: bool = False
    cause: Exception | None = None  # a copy of the network error safe to chain: same type, scrubbed text
    headers: httpx2.Headers | None = None  # an error answer's headers, keys scrubbed (for the error)


_Trace = Callable[[str, Mapping[str, Any]], Awaitable[None]]


class _Departure:
    """Whether an attempt's request has started to leave (its headers are being written)."""

    __slots__ = ("left",)

    def __init__(self) -> None:
        self.left = False

    def tracer(self, trace: _Trace) -> _Trace:
        """``trace`` (the slot's httpx ``trace`` callback) that also notes when the request starts to leave."""

        # A plain function returning the slot's coroutine: one coroutine per event, not two (about ten events a
        # request reach it).
        def traced(event: str, info: Mapping[str, Any]) -> Awaitable[None]:
            if event.endswith("send_request_headers.started"):
                self.left = True
            return trace(event, info)

        return traced


class AttemptRunner:
    """Sends attempts for one session (its key, endpoints, headers, hub)."""

    def __init__(
        self,
        *,
        backend: ThrottleBackend,
        pools: ConnectionPools,
        key_id: str,
        base_urls: dict[str, str],
        headers: httpx2.Headers,
        scrub: Callable[[str], str],
        keys: tuple[Secret, ...],
        pool_size: int,
    ) -> None:
        self._backend = backend
        self._pools = pools
        self._key_id = key_id
        self._base_urls = base_urls
        self._headers = headers  # built once per session; its repr masks Authorization
        self._scrub = scrub
        self._keys = keys
        self._pool_size = pool_size
        self._detached: set[asyncio.Task[None]] = set()

    @property
    def detached(self) -> int:
        """Exchanges still running after their caller was cancelled (Remote only; see :meth:`run`)."""
        return len(self._detached)

    async def run(self, mode: Mode, req: Prepared, options: RequestOptions, *, retry: bool) -> Outcome:
        """One attempt. On a spaced (Remote) key, a cancellation after the request left frees the caller at once
        while the exchange goes on: the office runs the request anyway and refuses anything that arrives before
        it has answered, so the key is released when the answer has been read (within the attempt's deadline),
        not at a guess. A cancellation before the request left cancels the exchange: it takes no turn."""
        if self._backend.interval(mode, self._key_id) <= 0:
            return await self._exchange(mode, req, options, retry, None)
        # The exchange runs in a task of its own, so that it can outlive this one; the caller waits on a plain
        # future that the exchange resolves itself (a cancellation of the caller cancels only that future).
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[Outcome] = loop.create_future()
        departure = _Departure()
        exchange = loop.create_task(self._detachable(answer, mode, req, options, retry, departure))
        try:
            return await answer
        except asyncio.CancelledError:
            if not departure.left:
                exchange.cancel()
            elif not exchange.done():
                self._detached.add(exchange)
                exchange.add_done_callback(self._detached.discard)
            raise

    async def _detachable(
        self,
        answer: asyncio.Future[Outcome],
        mode: Mode,
        req: Prepared,
        options: RequestOptions,
        retry: bool,
        departure: _Departure,
    ) -> None:
        """The exchange of :meth:`run`, handing its outcome (or error) to ``answer`` unless the caller has gone
        (then it is dropped: the caller was cancelled, and an error is not reported twice)."""
        try:
            outcome = await self._exchange(mode, req, options, retry, departure)
        except asyncio.CancelledError:
            answer.cancel()  # cancelled from outside (the loop is ending): so is the caller's wait
            raise
        except BaseException as exc:
            if not answer.done():
                answer.set_exception(exc)
            if not isinstance(exc, Exception):
                raise  # KeyboardInterrupt, SystemExit: the loop's to end with, as from any task
            return
        if not answer.done():
            answer.set_result(outcome)

    async def _exchange(
        self, mode: Mode, req: Prepared, options: RequestOptions, retry: bool, departure: _Departure | None
    ) -> Outcome:
        url = self._base_urls[mode] + req.path + req.query
        try:
            async with self._backend.slot(mode, self._key_id, options.priority, retry=retry) as slot:
                # The runner is the session's mark on the pool (one per session, shared by its views).
                async with self._pools.lease(self._key_id, self, max_connections=self._pool_size) as client:
                    # On a spaced (Remote) key the spacing counts from when the request really left.
                    trace = None
                    if slot.spaced:
                        trace = {"trace": (departure or _Departure()).tracer(slot.trace)}
                    request = client.build_request(
                        req.method,
                        url,
                        content=req.payload,
                        headers=self._headers,
                        timeout=options.timeout,
                        extensions=trace,
                    )
                    async with deadline(options.total):
                        response = await client.send(request, stream=True)
                        try:
                            content = await _read_capped(response, options.max_response_bytes, req, mode)
                        finally:
                            await response.aclose()
                status = response.status_code
                if status < 300:
                    return Outcome(
                        Kind.ANSWER,
                        mode,
                        Answer(status, content, response.headers, req.method, req.path, mode, self._keys),
                    )
                text = self._scrub(_explanation(content, response.headers.get("Location")))
                content = b""  # a server that echoes the key must not leave it in this frame's locals
                retry_after = parse_retry_after(response.headers.get("Retry-After"))
                headers = httpx2.Headers([(k, self._scrub(v)) for k, v in response.headers.multi_items()])
                if is_throttle_answer(status, text):
                    # Reported before the slot is released, so the next waiter is held back too.
                    slot.report_throttled(retry_after, max_wait=options.max_retry_wait)
                    return Outcome(
                        Kind.THROTTLED,
                        mode,
                        status=status,
                        text=text,
                        retry_after=retry_after,
                        real_429=status == 429,
                        headers=headers,
                    )
                return Outcome(
                    Kind.STATUS, mode, status=status, text=text, retry_after=retry_after, headers=headers
                )
        except httpx2.RequestError as exc:
            cause = _sanitized(exc, self._scrub)
            kind = Kind.NOT_SENT if isinstance(exc, _NEVER_LEFT) else Kind.LOST
        except TimeoutError:
            failure = f"no complete answer within {options.total:g} s"
            return Outcome(Kind.LOST, mode, failure=failure, timed_out=True)
        # Built outside the except block, so the original exception (its request carries the Authorization
        # header, its frames hold it in locals) is neither kept nor chained.
        return Outcome(kind, mode, failure=f"{type(cause).__name__}: {cause}", cause=cause)


def _sanitized(exc: httpx2.RequestError, scrub: Callable[[str], str]) -> Exception:
    """A copy of an httpx2 error safe to chain: same type, message without keys, no request, no traceback."""
    message = scrub(str(exc))
    try:
        return type(exc)(message)
    except Exception:  # a subclass with another signature
        return httpx2.TransportError(message)


async def _read_capped(response: httpx2.Response, limit: int, req: Prepared, mode: Mode) -> bytes:
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > limit:
        raise ResponseTooLarge(limit=limit, received=0, method=req.method, path=req.path, mode=mode)
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > limit:
            raise ResponseTooLarge(limit=limit, received=size, method=req.method, path=req.path, mode=mode)
        chunks.append(chunk)
    return b"".join(chunks)  # one chunk: joined without a copy


def _explanation(content: bytes, location: str | None) -> str:
    """The server's plain-text reason (also when it arrives as a JSON string), whole: messages quote 2 KB of it."""
    text = content.decode("utf-8", "replace").strip()
    if location and not text:
        return f"redirect to {location}"
    if text.startswith('"') and text.endswith('"'):
        try:
            decoded = msgspec.json.decode(text)
        except msgspec.DecodeError:
            return text
        return decoded if isinstance(decoded, str) else text
    if location:
        return f"redirect to {location}: {text}"
    return text
