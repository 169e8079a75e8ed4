"""The exceptions odapi_async raises.

::

    OpenDentalError
    ├── ConfigurationError          missing key, unknown mode, bad option (raised at construction)
    ├── InvalidParameter            wrong parameter name, type or value (raised before any request)
    ├── BodyTooLarge                body over the API's 16.8 M character limit (raised before sending)
    ├── PaginationError             a list stream cannot go on exactly (the server ignores Offset, ...)
    ├── SessionClosed               the session was used after aclose()
    ├── ThrottleUnavailable         the shared (Redis) throttle could not be asked; nothing was sent
    ├── TransportError              the request failed on the network (no HTTP answer)
    │   ├── ConnectError            ... before it left: refused, DNS, connect timeout
    │   ├── Timeout                 ... past the attempt's total deadline
    │   └── OutcomeUnknown          ... after a write may have reached the server (not sent again)
    │       └── WriteGatewayTimeout a 504 to a write: it may have run (also a GatewayTimeout)
    ├── ResponseTooLarge            the answer passed max_response_bytes; reading stopped there
    ├── DecodeError                 the server's answer does not fit the model (carries a snippet)
    └── APIStatusError              the server answered with an error status
        ├── BadRequest              400 (validation, eConnector down, version too old)
        ├── Unauthorized            401 (bad key, missing API permission)
        ├── NotFound                404
        ├── Gone                    410 (deprecated method)
        ├── Throttled               429 or a throttle answer, after the retries ran out
        └── ServerError             5xx
            └── GatewayTimeout      504 (past the server's 60 s limit); to a write: WriteGatewayTimeout

Every error carries the HTTP method, the URL path (never a key: keys travel only in the Authorization
header) and the mode that answered; status errors also carry the status and the server's explanation text.
Messages quote at most :data:`QUOTE_LIMIT` characters of what the server sent (a proxy's 200 KB HTML error page
would otherwise fill a log); the whole text stays on the exception (``explanation``, ``body``). Every error
pickles with its attributes (Celery, process pools and ``concurrent.futures`` send them between processes).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar

from odapi_async._util.redact import scrub

#: Characters of a DecodeError's ``snippet``.
_SNIPPET = 200
#: Characters of the server's text an error message quotes at most.
QUOTE_LIMIT = 2048


def _quote(text: str) -> str:
    if len(text) <= QUOTE_LIMIT:
        return text
    return f"{text[:QUOTE_LIMIT]}… [{len(text) - QUOTE_LIMIT:,} more characters]"


def _rebuild(cls: type[BaseException], args: tuple[Any, ...], state: dict[str, Any]) -> BaseException:
    error = cls.__new__(cls, *args)
    error.args = args
    error.__dict__.update(state)
    return error


class OpenDentalError(Exception):
    """Base class of every error odapi_async raises on purpose."""

    def __reduce__(self) -> tuple[Any, ...]:
        # The default re-calls ``cls(*args)``, which fails for the keyword-only constructors below; rebuild
        # from the message and the attributes instead, without calling ``__init__``.
        return (_rebuild, (type(self), self.args, dict(self.__dict__)))


class ConfigurationError(OpenDentalError, ValueError):
    """The session was set up wrongly (no key, unknown mode, bad option)."""


class InvalidParameter(OpenDentalError, TypeError):
    """A parameter name, type or value the spec does not allow; raised before any request is made."""

    def __init__(self, message: str, *, operation: str, parameter: str, valid: tuple[str, ...] = ()) -> None:
        self.operation = operation
        self.parameter = parameter
        self.valid = valid
        super().__init__(message)


class BodyTooLarge(OpenDentalError, ValueError):
    """A POST/PUT body longer than the API accepts; raised before sending."""

    def __init__(self, size: int, limit: int) -> None:
        self.size = size
        self.limit = limit
        super().__init__(f"request body is {size:,} characters; the API accepts at most {limit:,}")


class PaginationError(OpenDentalError):
    """A list stream cannot go on without losing or doubling rows (e.g. the server ignores ``Offset``)."""

    def __init__(self, message: str, *, operation: str, offset: int, limit: int) -> None:
        self.operation = operation
        self.offset = offset
        self.limit = limit
        super().__init__(message)


class _RequestError(OpenDentalError):
    """Shared fields of errors tied to one request."""

    def __init__(self, message: str, *, method: str, path: str, mode: str | None) -> None:
        self.method = method
        self.path = path
        self.mode = mode
        super().__init__(message)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self)!r})"


class TransportError(_RequestError):
    """The request failed on the network before an HTTP answer arrived."""


class ConnectError(TransportError):
    """The connection could not be made, so the request provably never reached the server."""


class ResponseTooLarge(_RequestError):
    """The answer grew past the session's response size cap; reading stopped there, nothing was decoded."""

    def __init__(self, *, limit: int, received: int, method: str, path: str, mode: str | None) -> None:
        self.limit = limit
        self.received = received
        mode_text = f" [{mode}]" if mode else ""
        super().__init__(
            f"{method} {path}{mode_text}: the answer passed the response size cap of {limit:,} bytes "
            f"(stopped after {received:,} bytes)",
            method=method,
            path=path,
            mode=mode,
        )


class DecodeError(_RequestError):
    """The server's answer could not be read into the expected model.

    ``snippet`` is the start of the answer and ``body`` all of it, both without keys (a server that echoes the
    request headers would show the ``Authorization`` header); pass the session's keys as ``secrets``.
    """

    def __init__(
        self,
        reason: str,
        *,
        method: str,
        path: str,
        mode: str | None,
        body: bytes | str,
        secrets: Iterable[str] = (),
    ) -> None:
        secrets = tuple(secrets)
        text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
        text = scrub(text, secrets)
        reason = scrub(reason, secrets)
        secrets = ()  # no key left in this frame's locals (tracebacks shown with locals)
        self.body = text
        self.snippet: str = text[:_SNIPPET]
        self.reason = reason
        more = "…" if len(text) > _SNIPPET else ""
        super().__init__(
            f"{method} {path}: could not decode the answer ({reason}); body starts {self.snippet!r}{more}",
            method=method,
            path=path,
            mode=mode,
        )


class APIStatusError(_RequestError):
    """The server answered with an error status; ``explanation`` is its plain-text reason."""

    status_code: int = 0

    def __init__(
        self,
        *,
        status_code: int,
        method: str,
        path: str,
        mode: str | None,
        explanation: str,
        secrets: Iterable[str] = (),
    ) -> None:
        explanation = scrub(explanation, secrets)
        secrets = ()
        self.status_code = status_code
        self.explanation = explanation  # the whole text; the message quotes its start
        detail = f": {_quote(explanation)}" if explanation else ""
        mode_text = f" [{mode}]" if mode else ""
        super().__init__(
            f"{status_code} {method} {path}{mode_text}{detail}{self._after}",
            method=method,
            path=path,
            mode=mode,
        )

    #: The answer's headers (keys scrubbed), set by the request path; ``None`` on an error made by hand.
    headers: Any = None
    #: What a subclass adds to the message.
    _after: ClassVar[str] = ""


class BadRequest(APIStatusError):
    """400: the server refused the request (validation, eConnector not running, version too old)."""


class Unauthorized(APIStatusError):
    """401: the developer or customer key is wrong or lacks the API permission."""

    #: The API permission group the operation needs (from the docs' table), when the call was an operation.
    permission: str | None = None


class NotFound(APIStatusError):
    """404: no such object."""


class Gone(APIStatusError):
    """410: the method is deprecated and no longer served."""


class Throttled(APIStatusError):
    """The server throttled the customer key and the retries ran out."""

    def __init__(self, *, retry_after: float | None = None, **kwargs: Any) -> None:
        self.retry_after = retry_after
        super().__init__(**kwargs)


class ServerError(APIStatusError):
    """5xx: the server failed."""


class GatewayTimeout(ServerError):
    """504: the request ran past the server's time limit."""


_BY_STATUS: dict[int, type[APIStatusError]] = {
    400: BadRequest,
    401: Unauthorized,
    404: NotFound,
    410: Gone,
    429: Throttled,
    504: GatewayTimeout,
}


def status_error_class(status_code: int) -> type[APIStatusError]:
    """The exception class for an error status."""
    if status_code in _BY_STATUS:
        return _BY_STATUS[status_code]
    return ServerError if status_code >= 500 else APIStatusError


# -- raised by the request path and the session's lifecycle ------------------------------------------------


class Timeout(TransportError):
    """The attempt ran past its total deadline (``timeout=``: connect, send and the whole answer)."""


class OutcomeUnknown(TransportError):
    """A request that must not run twice failed after it may have reached the server; it was not sent again.

    Check on the server (list the rows it would have made) before sending it again. ``status_code`` is the
    status that answered (504), or ``None`` when no answer came (a reset, a timeout).
    """

    status_code: int | None = None


# mypy sees OutcomeUnknown's ``int | None`` against APIStatusError's ``int``; here it is always an int: both hold.
class WriteGatewayTimeout(OutcomeUnknown, GatewayTimeout):  # type: ignore[misc]
    """504 to a write: the API's docs say the request ran past the 60 s limit, so it may have run.

    An :class:`OutcomeUnknown` first (it was not sent again; check before sending it yourself); also a
    :class:`GatewayTimeout`, so a handler written for the 504 still sees it, with ``explanation`` and ``headers``.
    """

    _after = "; the write may have run on the server, so it was not sent again"


class SessionClosed(OpenDentalError, RuntimeError):
    """The session was closed (``aclose()`` or the end of its ``async with``); make a new one."""


class ThrottleUnavailable(OpenDentalError, RuntimeError):
    """The shared throttle (Redis) could not be asked, or gave no turn in time; the request was not sent."""
