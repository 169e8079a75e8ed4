"""The hub's HTTP/1.1 connections: httpcore2's pool, with a lean connection of our own under it.

httpx2's client and transport stay as they are (exceptions, timeouts, the ``trace`` extension, proxies, respx
mocks, which patch the pool's ``handle_async_request``); only the connection the pool makes is ours. It talks to
an ``asyncio.Protocol`` directly: no anyio stream, lock or cancel scope per read, one wake-up when the bytes a
read waits for have arrived (not one per packet), and a small response parser instead of h11's state machine.
At 200 offices that is most of the client's HTTP cost (``docs/architecture.md``, "Transport").

What it does, as httpcore2's ``AsyncHTTP11Connection`` over ``AsyncHTTPConnection`` does:

- connect (``connect`` timeout for the TCP connect and again for the TLS handshake, the hub's SSL context, SNI
  from the ``sni_hostname`` extension or the host), keep-alive with ``keepalive_expiry``;
- a connection the server closed (or wrote to) while idle is not used: the pool is told
  (``ConnectionNotAvailable``) and sends the request on another; any other failure is the caller's;
- framing: ``Content-Length``, ``chunked``, read-to-close; no body for HEAD, 1xx, 204, 304; 1xx skipped;
  ``Connection: close`` (either side) and HTTP/1.0 close after the answer; obsolete header folding joined;
- errors are httpcore2's (httpx2 maps them): ``ConnectError``/``ConnectTimeout``, ``ReadTimeout`` (no byte for
  ``read`` seconds), ``WriteTimeout``, ``ReadError`` (reset), ``RemoteProtocolError`` (a malformed answer, a body
  cut short, a server gone before answering), ``LocalProtocolError`` (a header that cannot be sent);
- the ``trace`` extension gets httpcore2's events under the same names (``http11.send_request_headers.started``
  is when the request leaves), and the ``httpcore2.http11``/``httpcore2.connection`` loggers their lines.

Not here: HTTP/2, upgrades (a 101 answer ends the connection), proxies, Unix sockets, local addresses, socket
options and connect retries (the hub's pools use none of them; a pool given any of them makes httpcore2's own
connections).
"""

from __future__ import annotations

import asyncio
import enum
import logging
import re
import select
import ssl
import time
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Coroutine
from typing import Any, TypeVar

import httpcore2
import httpx2

__all__ = ["LeanConnectionPool", "LeanHTTP11Connection", "LeanTransport"]

_Trace = Callable[[str, dict[str, Any]], Awaitable[None]]
_T = TypeVar("_T")

_http_log = logging.getLogger("httpcore2.http11")
_connect_log = logging.getLogger("httpcore2.connection")

#: A response head (status line and headers) longer than this is refused (h11's limit, as httpcore2 sets it).
MAX_HEAD_BYTES = 100 * 1024
#: A chunk-size line or a trailer line longer than this is refused.
MAX_LINE_BYTES = 64 * 1024
#: A body is handed up in pieces of at most this (so the size cap of the attempt acts before it is all in).
MAX_PIECE_BYTES = 1024 * 1024
_DEFAULT_LIMITS = httpx2.Limits(max_connections=100, max_keepalive_connections=20)  # httpx2's own default

# RFC 9110/9112 grammar, as h11 reads it (h11/_abnf.py): lenient where servers are, strict where it matters.
_TOKEN = rb"[-!#$%&'*+.^_`|~0-9a-zA-Z]+"
_FIELD_CONTENT = rb"[^\x00\s]+(?:[ \t]+[^\x00\s]+)*"
_STATUS_LINE = re.compile(rb"HTTP/([0-9]\.[0-9]) ([0-9]{3})(?: ((?:[ \t]|[^\x00\s])*))?")
_HEADER_LINE = re.compile(rb"(" + _TOKEN + rb"):[ \t]*(" + _FIELD_CONTENT + rb")?[ \t]*")
_FIELD_NAME = re.compile(_TOKEN)
_FIELD_VALUE = re.compile(rb"(?:" + _FIELD_CONTENT + rb")?")
_TARGET = re.compile(rb"[\x21-\x7e]+")
_CHUNK_HEADER = re.compile(rb"([0-9A-Fa-f]{1,20})(?:;.*)?[ \t]*")
_END_OF_HEAD = re.compile(rb"\r?\n\r?\n")
_CONTENT_LENGTH = re.compile(rb"[0-9]{1,20}")


class _State(enum.IntEnum):
    NEW = 0
    ACTIVE = 1
    IDLE = 2
    CLOSED = 3


class _Framing(enum.Enum):
    NONE = "none"  # HEAD, 1xx, 204, 304
    LENGTH = "length"
    CHUNKED = "chunked"
    CLOSE = "close"  # read until the server closes (no length given)


class _Wire(asyncio.Protocol):
    """The socket's side: bytes into a buffer; the one waiter woken when ``need`` bytes are in, or at the end."""

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None
        self.ended = False  # the server closed its side (or the connection is gone)
        self.error: BaseException | None = None  # why the connection was lost, if not a clean close
        self.last_data = 0.0  # time.monotonic() of the last bytes (a read timeout counts from it)
        self.need = 0
        self.waiter: asyncio.Future[None] | None = None
        self.paused = False
        self.drained: asyncio.Future[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        self.last_data = time.monotonic()
        if self.waiter is not None and len(self.buffer) >= self.need:
            self._wake()

    def eof_received(self) -> bool:
        self.ended = True
        self._wake()
        return False  # close our side too (a half-closed HTTP/1.1 connection is of no use)

    def connection_lost(self, exc: Exception | None) -> None:
        self.ended = True
        self.error = exc
        self._wake()
        if self.drained is not None and not self.drained.done():
            self.drained.set_result(None)

    def pause_writing(self) -> None:
        self.paused = True

    def resume_writing(self) -> None:
        self.paused = False
        if self.drained is not None and not self.drained.done():
            self.drained.set_result(None)

    def _wake(self) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


class LeanHTTP11Connection(httpcore2.AsyncConnectionInterface):
    """One HTTP/1.1 connection to one origin, made by :class:`LeanConnectionPool` (see the module docstring)."""

    def __init__(
        self, origin: httpcore2.Origin, ssl_context: ssl.SSLContext | None, keepalive_expiry: float | None
    ) -> None:
        self._origin = origin
        self._ssl_context = ssl_context
        self._keepalive_expiry = keepalive_expiry
        self._state = _State.NEW
        self._wire: _Wire | None = None
        self._expire_at: float | None = None
        self._request_count = 0
        self._exchange = (
            0  # counts requests: a late close from an earlier answer's stream must not hit a later one
        )

    # -- the pool's view (AsyncConnectionInterface)

    def can_handle_request(self, origin: httpcore2.Origin) -> bool:
        return origin == self._origin

    def is_available(self) -> bool:
        return self._state == _State.IDLE

    def has_expired(self) -> bool:
        if self._state != _State.IDLE:
            return False
        wire = self._wire
        if wire is not None and (wire.ended or wire.buffer):
            return True  # the server closed it (or wrote to it) while idle
        expire_at = self._expire_at
        return expire_at is not None and time.monotonic() > expire_at

    def is_idle(self) -> bool:
        return self._state == _State.IDLE

    def is_closed(self) -> bool:
        return self._state == _State.CLOSED

    def is_connected(self) -> bool:
        return self._wire is not None and self._state != _State.CLOSED

    def can_multiplex(self) -> bool:
        return False

    def info(self) -> str:
        return f"{str(self._origin)!r}, HTTP/1.1, {self._state.name}, Request Count: {self._request_count}"

    def __repr__(self) -> str:
        return f"<{type(self).__name__} [{self.info()}]>"

    async def aclose(self) -> None:
        transport = self._close()
        if transport is not None:
            # As anyio does: one turn of the loop lets the transport close its socket (even when the loop is
            # about to stop), then whatever is left (a TLS shutdown the server does not answer) is cut.
            await asyncio.sleep(0)
            transport.abort()

    def _close(self) -> asyncio.Transport | None:
        """Closed now (the socket at the loop's next turn); the transport, if it was open."""
        self._state = _State.CLOSED
        wire = self._wire
        if wire is None or wire.transport is None or wire.transport.is_closing():
            return None
        wire.transport.close()
        return wire.transport

    # -- one request

    async def handle_async_request(self, request: httpcore2.Request) -> httpcore2.Response:
        if not self.can_handle_request(request.url.origin):
            raise RuntimeError(
                f"Attempted to send request to {request.url.origin} on connection to {self._origin}"
            )
        if self._state == _State.IDLE and self._stale():
            self._close()
        if self._state not in (_State.NEW, _State.IDLE):
            raise httpcore2.ConnectionNotAvailable()
        trace: _Trace | None = request.extensions.get("trace")
        timeouts = request.extensions.get("timeout", {})
        self._state = _State.ACTIVE
        self._request_count += 1
        self._exchange += 1
        self._expire_at = None
        try:
            if self._wire is None:
                self._wire = await self._connect(request, trace, timeouts.get("connect"))
            wire = self._wire
            info = {"request": request}
            await _event(trace, _http_log, "http11.send_request_headers.started", info)
            keep_alive = True
            try:
                keep_alive = await self._send_head(wire, request, timeouts.get("write"))
                await _event(trace, _http_log, "http11.send_request_headers.complete", {"return_value": None})
                await _event(trace, _http_log, "http11.send_request_body.started", info)
                await self._send_body(wire, request, timeouts.get("write"))
                await _event(trace, _http_log, "http11.send_request_body.complete", {"return_value": None})
            except httpcore2.WriteError:
                # As httpcore2: a server may close early and still answer (a 413); read what it says.
                keep_alive = False
            await _event(trace, _http_log, "http11.receive_response_headers.started", info)
            read_timeout = timeouts.get("read")
            while True:
                version, status, reason, headers = await self._receive_head(wire, read_timeout)
                if status >= 200 or status == 101:
                    break
            http_version = b"HTTP/" + version
            await _event(
                trace,
                _http_log,
                "http11.receive_response_headers.complete",
                {"return_value": (http_version, status, reason, headers)},
            )
            framing, length, reusable = _framing(request.method, status, version, headers)
            body = _ResponseBody(self, self._exchange, wire, request, framing, length, read_timeout)
            body.keep_alive = keep_alive and reusable
            return httpcore2.Response(
                status=status,
                headers=headers,
                content=body,
                extensions={"http_version": http_version, "reason_phrase": reason},
            )
        except BaseException:
            self._close()
            raise

    def _stale(self) -> bool:
        """Whether an idle connection was closed or written to by the server (then it must not be used)."""
        wire = self._wire
        if wire is None or wire.transport is None or wire.ended or wire.buffer or wire.transport.is_closing():
            return True
        return _socket_readable(wire.transport.get_extra_info("socket"))

    async def _connect(
        self, request: httpcore2.Request, trace: _Trace | None, timeout: float | None
    ) -> _Wire:
        loop = asyncio.get_running_loop()
        host = self._origin.host.decode("ascii")
        port = self._origin.port
        info: dict[str, Any] = {"host": host, "port": port, "local_address": None, "timeout": timeout}
        info["socket_options"] = None
        await _event(trace, _connect_log, "connection.connect_tcp.started", info)
        try:
            # No happy_eyeballs_delay: asyncio's staggered race leaks a socket when cancelled (3.10, 3.11).
            connecting = loop.create_connection(_Wire, host, port)
            transport, wire = await _bounded(connecting, timeout, lambda made: made[0].abort())
        except asyncio.TimeoutError as exc:
            await _event(trace, _connect_log, "connection.connect_tcp.failed", {"exception": exc})
            raise httpcore2.ConnectTimeout(str(exc)) from exc
        except OSError as exc:
            await _event(trace, _connect_log, "connection.connect_tcp.failed", {"exception": exc})
            raise httpcore2.ConnectError(str(exc)) from exc
        await _event(trace, _connect_log, "connection.connect_tcp.complete", {"return_value": transport})
        if self._origin.scheme not in (b"https", b"wss"):
            return wire
        ctx = self._ssl_context if self._ssl_context is not None else httpcore2.default_ssl_context()
        ctx.set_alpn_protocols(["http/1.1"])
        server_hostname = request.extensions.get("sni_hostname") or host
        info = {"ssl_context": ctx, "server_hostname": server_hostname, "timeout": timeout}
        await _event(trace, _connect_log, "connection.start_tls.started", info)
        try:
            handshake = loop.start_tls(transport, wire, ctx, server_hostname=server_hostname)
            tls = await _bounded(handshake, timeout, lambda made: made.abort() if made is not None else None)
        except BaseException as exc:
            transport.abort()
            await _event(trace, _connect_log, "connection.start_tls.failed", {"exception": exc})
            if isinstance(exc, asyncio.TimeoutError):
                raise httpcore2.ConnectTimeout(str(exc)) from exc
            if isinstance(exc, (OSError, ssl.SSLError)):  # ssl.CertificateError is one too
                raise httpcore2.ConnectError(str(exc)) from exc
            raise
        if tls is None:  # the connection closed during the handshake
            raise httpcore2.ConnectError("the server closed the connection during the TLS handshake")
        assert isinstance(tls, asyncio.Transport)
        wire.transport = tls
        await _event(trace, _connect_log, "connection.start_tls.complete", {"return_value": tls})
        return wire

    # -- sending

    async def _send_head(self, wire: _Wire, request: httpcore2.Request, timeout: float | None) -> bool:
        """Write the request line and headers; whether the request lets the connection be kept."""
        method = request.method
        target = request.url.target
        if not _FIELD_NAME.fullmatch(method) or not _TARGET.fullmatch(target):
            raise httpcore2.LocalProtocolError(f"Illegal request line {method!r} {target!r}")
        lines = [method, b" ", target, b" HTTP/1.1\r\n"]
        keep_alive = True
        host = False
        for name, value in request.headers:
            if not _FIELD_NAME.fullmatch(name):
                raise httpcore2.LocalProtocolError(f"Illegal header name {name!r}")
            if not _FIELD_VALUE.fullmatch(value):
                raise httpcore2.LocalProtocolError(f"Illegal header value {value!r}")
            lower = name.lower()
            if lower == b"host":
                host = True
            elif lower == b"connection" and b"close" in _tokens(value):
                keep_alive = False
            lines += (name, b": ", value, b"\r\n")
        if not host:
            raise httpcore2.LocalProtocolError("Missing mandatory Host: header")
        lines.append(b"\r\n")
        await _write(wire, b"".join(lines), timeout)
        return keep_alive

    async def _send_body(self, wire: _Wire, request: httpcore2.Request, timeout: float | None) -> None:
        chunked = False
        expected: int | None = None
        for name, value in request.headers:
            lower = name.lower()
            if lower == b"transfer-encoding":
                chunked = value.strip().lower() == b"chunked"
            elif lower == b"content-length" and _CONTENT_LENGTH.fullmatch(value.strip()):
                expected = int(value)
        stream = request.stream
        assert isinstance(stream, AsyncIterable)
        sent = 0
        async for piece in stream:
            sent = await _write_piece(wire, piece, chunked, expected, sent, timeout)
        if chunked:
            await _write(wire, b"0\r\n\r\n", timeout)
        elif expected is not None and sent < expected:
            raise httpcore2.LocalProtocolError("Too little data for declared Content-Length")

    # -- receiving

    async def _receive_head(
        self, wire: _Wire, timeout: float | None
    ) -> tuple[bytes, int, bytes, list[tuple[bytes, bytes]]]:
        start = 0
        while True:
            buffer = wire.buffer
            found = _END_OF_HEAD.search(buffer, start)
            if found is not None:
                break
            if len(buffer) > MAX_HEAD_BYTES:
                raise httpcore2.RemoteProtocolError("the response head is too long")
            if wire.ended:
                if wire.error is not None and not buffer:
                    raise httpcore2.ReadError(str(wire.error))
                if not buffer:
                    raise httpcore2.RemoteProtocolError("Server disconnected without sending a response.")
                raise httpcore2.RemoteProtocolError(
                    "peer closed connection without sending a complete response head"
                )
            start = max(0, len(buffer) - 3)
            await _wait(wire, len(buffer) + 1, timeout)
        head = bytes(buffer[: found.start()])
        del buffer[: found.end()]
        if len(head) > MAX_HEAD_BYTES:
            raise httpcore2.RemoteProtocolError("the response head is too long")
        lines = head.split(b"\n")
        status_line = lines[0].rstrip(b"\r")
        matched = _STATUS_LINE.fullmatch(status_line)
        if matched is None:
            raise httpcore2.RemoteProtocolError(f"illegal status line: {status_line[:200]!r}")
        version, status, reason = matched.group(1), int(matched.group(2)), matched.group(3) or b""
        return version, status, reason, _parse_headers(lines[1:])


class _ResponseBody:
    """A response's body as the pool hands it on (``__aiter__``, ``aclose``): reads from the connection's wire."""

    def __init__(
        self,
        connection: LeanHTTP11Connection,
        exchange: int,
        wire: _Wire,
        request: httpcore2.Request,
        framing: _Framing,
        length: int,
        timeout: float | None,
    ) -> None:
        self._connection = connection
        self._exchange = exchange
        self._wire = wire
        self._request = request
        self._trace: _Trace | None = request.extensions.get("trace")
        self._framing = framing
        self._remaining = length  # LENGTH: bytes still to come; CHUNKED: of the current chunk
        self._timeout = timeout
        self._started = False
        self._complete = framing is _Framing.NONE
        self._closed = False
        self._reported = False  # the end of the body was traced
        self.keep_alive = True

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self

    async def __anext__(self) -> bytes:
        if not self._started:
            self._started = True
            await _event(
                self._trace, _http_log, "http11.receive_response_body.started", {"request": self._request}
            )
        if self._closed:
            raise StopAsyncIteration
        if self._complete:
            if self._reported:
                raise StopAsyncIteration
            self._reported = True
            await _event(
                self._trace, _http_log, "http11.receive_response_body.complete", {"return_value": None}
            )
            raise StopAsyncIteration
        try:
            if self._framing is _Framing.LENGTH:
                piece = await self._take(self._remaining)
                self._remaining -= len(piece)
                if not self._remaining:
                    self._complete = True
                return piece
            if self._framing is _Framing.CHUNKED:
                piece = await self._next_chunk()
            else:
                piece = await self._until_close()
        except BaseException:
            self._abort()
            raise
        if piece:
            return piece
        return await self.__anext__()  # the end (complete now)

    async def _take(self, most: int) -> bytes:
        """Between 1 and ``most`` bytes of the body (all of them when they are in; pieces if it is large)."""
        wire = self._wire
        want = min(most, MAX_PIECE_BYTES)
        if len(wire.buffer) < want:
            await _read_at_least(wire, want, self._timeout, allow_end=True)
        buffer = wire.buffer
        if not buffer:
            raise httpcore2.RemoteProtocolError(
                f"peer closed connection without sending complete message body: {self._remaining} bytes missing"
            )
        if len(buffer) <= most:
            piece = bytes(buffer)
            buffer.clear()
        else:
            piece = bytes(buffer[:most])
            del buffer[:most]
        return piece

    async def _line(self) -> bytes:
        wire = self._wire
        start = 0
        while True:
            end = wire.buffer.find(b"\n", start)
            if end >= 0:
                break
            if len(wire.buffer) > MAX_LINE_BYTES:
                raise httpcore2.RemoteProtocolError("a chunk-size or trailer line is too long")
            if wire.ended:
                raise httpcore2.RemoteProtocolError(
                    "peer closed connection without sending complete message body"
                )
            start = len(wire.buffer)
            await _wait(wire, start + 1, self._timeout)
        line = bytes(wire.buffer[:end])
        del wire.buffer[: end + 1]
        return line[:-1] if line.endswith(b"\r") else line

    async def _next_chunk(self) -> bytes:
        """The next piece of chunk data; ``b""`` after the last chunk and its trailers."""
        if not self._remaining:
            line = await self._line()
            matched = _CHUNK_HEADER.fullmatch(line)
            if matched is None:
                raise httpcore2.RemoteProtocolError(f"illegal chunk header: {line[:100]!r}")
            self._remaining = int(matched.group(1), 16)
            if not self._remaining:
                while await self._line():  # trailers, until the empty line (checked, then dropped)
                    pass
                self._complete = True
                return b""
        piece = await self._take(self._remaining)
        self._remaining -= len(piece)
        if not self._remaining:
            await _read_at_least(self._wire, 2, self._timeout, allow_end=False)
            if self._wire.buffer[:2] != b"\r\n":
                raise httpcore2.RemoteProtocolError("malformed chunk footer")
            del self._wire.buffer[:2]
        return piece

    async def _until_close(self) -> bytes:
        wire = self._wire
        if not wire.buffer and not wire.ended:
            await _read_at_least(wire, 1, self._timeout, allow_end=True)
        if not wire.buffer:
            if wire.error is not None:
                raise httpcore2.ReadError(str(wire.error))
            self._complete = True
            return b""
        piece = bytes(wire.buffer[:MAX_PIECE_BYTES])
        del wire.buffer[:MAX_PIECE_BYTES]
        return piece

    def _abort(self) -> None:
        self._closed = True
        connection = self._connection
        if connection._exchange == self._exchange and connection._state == _State.ACTIVE:
            connection._close()

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        info = {"request": self._request}
        await _event(self._trace, _http_log, "http11.response_closed.started", info)
        connection = self._connection
        if connection._exchange == self._exchange and connection._state == _State.ACTIVE:
            wire = self._wire
            if self._complete and self.keep_alive and not wire.ended and not wire.buffer:
                connection._state = _State.IDLE
                if connection._keepalive_expiry is not None:
                    connection._expire_at = time.monotonic() + connection._keepalive_expiry
            else:
                connection._close()
        await _event(self._trace, _http_log, "http11.response_closed.complete", {"return_value": None})


class LeanConnectionPool(httpcore2.AsyncConnectionPool):
    """httpcore2's pool (queueing, limits, keep-alive expiry; respx patches it), making our connections."""

    def create_connection(self, origin: httpcore2.Origin) -> httpcore2.AsyncConnectionInterface:
        if not _plain(self):
            return super().create_connection(origin)
        return LeanHTTP11Connection(origin, self._ssl_context, self._keepalive_expiry)


def _plain(pool: httpcore2.AsyncConnectionPool) -> bool:
    """Whether ``pool`` uses none of the options our connection lacks. These are httpcore2's private attributes:
    a version of httpcore2 without them is not plain, so its own connections serve (never a request made wrong)."""
    try:
        return (
            pool._proxy is None
            and pool._uds is None
            and pool._local_address is None
            and not pool._socket_options
            and not pool._retries
            and not pool._http2
            and isinstance(pool._ssl_context, ssl.SSLContext | None)
            and isinstance(pool._keepalive_expiry, float | int | None)
        )
    except AttributeError:
        return False


class LeanTransport(httpx2.AsyncHTTPTransport):
    """httpx2's transport over :class:`LeanConnectionPool` (everything else of httpx2's transport kept)."""

    def __init__(
        self,
        *,
        verify: ssl.SSLContext | str | bool = True,
        cert: Any = None,
        trust_env: bool = True,
        limits: httpx2.Limits,
    ) -> None:
        super().__init__(verify=verify, cert=cert, trust_env=trust_env, limits=limits)
        stock = self._pool
        if not isinstance(stock, httpcore2.AsyncConnectionPool) or not _plain(stock):
            return  # a pool we do not know how to rebuild keeps httpcore2's own connections
        self._pool = LeanConnectionPool(
            ssl_context=stock._ssl_context,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
        )


class LeanClient(httpx2.AsyncClient):
    """An httpx2 client whose direct (proxy-less) transport is :class:`LeanTransport`; proxies stay httpx2's."""

    def _init_transport(
        self,
        verify: ssl.SSLContext | str | bool = True,
        cert: Any = None,
        trust_env: bool = True,
        http1: bool = True,
        http2: bool = False,
        limits: httpx2.Limits = _DEFAULT_LIMITS,
        transport: httpx2.AsyncBaseTransport | None = None,
    ) -> httpx2.AsyncBaseTransport:
        if transport is not None or http2 or not http1:
            return super()._init_transport(
                verify=verify, cert=cert, trust_env=trust_env, http1=http1, http2=http2, limits=limits,
                transport=transport,
            )  # fmt: skip
        return LeanTransport(verify=verify, cert=cert, trust_env=trust_env, limits=limits)


# -- helpers


def _socket_readable(sock: Any) -> bool:
    """Whether a read on ``sock`` would return at once (data, or the end: a closed peer); no socket: True.
    ``poll`` with no wait, as httpcore2 checks an idle connection (``select`` where there is no ``poll``)."""
    fd = sock.fileno() if sock is not None else -1
    if fd < 0:
        return True
    if not hasattr(select, "poll"):  # Windows
        return bool(select.select([fd], [], [], 0)[0])
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    return bool(poller.poll(0))


async def _event(trace: _Trace | None, log: logging.Logger, name: str, info: dict[str, Any]) -> None:
    """One trace event, as httpcore2's ``Trace`` sends it (to the extension, and to the debug log)."""
    if trace is not None:
        await trace(name, info)
    if log.isEnabledFor(logging.DEBUG):
        short = name.split(".", 1)[1]
        if not info or ("return_value" in info and info["return_value"] is None):
            log.debug(short)
        else:
            log.debug("%s %s", short, " ".join(f"{key}={value!r}" for key, value in info.items()))


async def _bounded(
    step: Coroutine[Any, Any, _T], timeout: float | None, discard: Callable[[_T], object]
) -> _T:
    """``step`` within ``timeout`` (``asyncio.TimeoutError`` after it). Unlike ``asyncio.wait_for`` on 3.10/3.11,
    a connection made just as the caller is cancelled or times out is not leaked: ``discard`` closes it."""
    task = asyncio.ensure_future(step)

    def orphaned(done: asyncio.Future[_T]) -> None:
        if not done.cancelled() and done.exception() is None:
            discard(done.result())

    try:
        finished, _ = await asyncio.wait((task,), timeout=timeout)
    except BaseException:
        task.cancel()
        task.add_done_callback(orphaned)
        raise
    if not finished:
        task.cancel()
        task.add_done_callback(orphaned)
        raise asyncio.TimeoutError()
    return task.result()


async def _wait(wire: _Wire, need: int, timeout: float | None) -> None:
    """Until the buffer holds ``need`` bytes or the connection ends; ``ReadTimeout`` after ``timeout`` s without
    a byte (the clock restarts with each arrival, as a read timeout per read does)."""
    if len(wire.buffer) >= need or wire.ended:
        return
    loop = asyncio.get_running_loop()
    waiter = loop.create_future()
    wire.need = need
    wire.waiter = waiter
    timer: asyncio.TimerHandle | None = None
    expired = False

    def check(armed_at: float, timeout: float) -> None:
        nonlocal timer, expired
        if waiter.done():
            return
        last = wire.last_data
        if last > armed_at:  # bytes came meanwhile (too few to wake the reader): the clock restarts from them
            late = last + timeout - time.monotonic()
            if late > 0:
                timer = loop.call_later(late, check, last, timeout)
                return
        expired = True
        waiter.set_result(None)

    if timeout is not None:
        timer = loop.call_later(timeout, check, time.monotonic(), timeout)
    try:
        await waiter
    finally:
        wire.waiter = None
        if timer is not None:
            timer.cancel()
    if expired:
        raise httpcore2.ReadTimeout("timed out waiting for the server's answer")


async def _read_at_least(wire: _Wire, need: int, timeout: float | None, *, allow_end: bool) -> None:
    await _wait(wire, need, timeout)
    if len(wire.buffer) >= need:
        return
    if wire.error is not None:
        raise httpcore2.ReadError(str(wire.error))
    if not allow_end:
        raise httpcore2.RemoteProtocolError("peer closed connection without sending complete message body")


async def _write(wire: _Wire, data: bytes, timeout: float | None) -> None:
    transport = wire.transport
    if transport is None or wire.ended or transport.is_closing():
        raise httpcore2.WriteError(str(wire.error) if wire.error else "the server closed the connection")
    transport.write(data)
    if not wire.paused:
        return
    loop = asyncio.get_running_loop()
    wire.drained = loop.create_future()
    try:
        await asyncio.wait_for(asyncio.shield(wire.drained), timeout)
    except asyncio.TimeoutError as exc:
        raise httpcore2.WriteTimeout("timed out writing the request") from exc
    finally:
        wire.drained = None
    if wire.ended:
        raise httpcore2.WriteError(str(wire.error) if wire.error else "the server closed the connection")


async def _write_piece(
    wire: _Wire, piece: bytes, chunked: bool, expected: int | None, sent: int, timeout: float | None
) -> int:
    if not piece:
        return sent
    sent += len(piece)
    if chunked:
        await _write(wire, b"%x\r\n%s\r\n" % (len(piece), piece), timeout)
        return sent
    if expected is None or sent > expected:
        raise httpcore2.LocalProtocolError("Too much data for declared Content-Length")
    await _write(wire, piece, timeout)
    return sent


def _parse_headers(lines: list[bytes]) -> list[tuple[bytes, bytes]]:
    headers: list[tuple[bytes, bytes]] = []
    for raw in lines:
        line = raw[:-1] if raw.endswith(b"\r") else raw
        if line[:1] in (b" ", b"\t"):  # obsolete line folding: a continuation of the previous value
            if not headers:
                raise httpcore2.RemoteProtocolError("continuation line at start of headers")
            name, value = headers[-1]
            more = line.strip(b" \t")
            headers[-1] = (name, value + b" " + more if value else more)
            continue
        matched = _HEADER_LINE.fullmatch(line)
        if matched is None:
            raise httpcore2.RemoteProtocolError(f"illegal header line: {line[:200]!r}")
        headers.append((matched.group(1), matched.group(2) or b""))
    return headers


def _tokens(value: bytes) -> list[bytes]:
    return [part.strip().lower() for part in value.split(b",")]


def _framing(
    method: bytes, status: int, version: bytes, headers: list[tuple[bytes, bytes]]
) -> tuple[_Framing, int, bool]:
    """How the body is delimited, its length, and whether the connection may carry another request after it."""
    reusable = version == b"1.1"
    length: bytes | None = None
    chunked = False
    for name, value in headers:
        lower = name.lower()
        if lower == b"content-length":
            values = {part.strip() for part in value.split(b",")}
            if len(values) != 1 or (length is not None and values != {length}):
                raise httpcore2.RemoteProtocolError("conflicting Content-Length headers")
            length = values.pop()
            if not _CONTENT_LENGTH.fullmatch(length):
                raise httpcore2.RemoteProtocolError("bad Content-Length")
        elif lower == b"transfer-encoding":
            if chunked or value.strip().lower() != b"chunked":
                raise httpcore2.RemoteProtocolError("Only Transfer-Encoding: chunked is supported")
            chunked = True
        elif lower == b"connection" and b"close" in _tokens(value):
            reusable = False
    if status == 101:
        return _Framing.NONE, 0, False
    if method == b"HEAD" or status < 200 or status in (204, 304):
        return _Framing.NONE, 0, reusable
    if chunked:  # it wins over a Content-Length (RFC 9112 6.3)
        return _Framing.CHUNKED, 0, reusable
    if length is not None:
        size = int(length)
        return (_Framing.LENGTH, size, reusable) if size else (_Framing.NONE, 0, reusable)
    return _Framing.CLOSE, 0, False
