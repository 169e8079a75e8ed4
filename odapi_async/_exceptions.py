"""The exceptions odapi_async raises.

::

    OpenDentalError
    ├── ConfigurationError          missing key, unknown mode, bad option (raised at construction)
    ├── InvalidParameter            wrong parameter name, type or value (raised before any request)
    ├── BodyTooLarge                body over the API's 16.8 M character limit (raised before sending)
    ├── SessionClosed               the session was used after aclose()
    ├── ThrottleUnavailable         the shared (Redis) throttle could not be asked; nothing was sent
    ├── TransportError              the request failed on the network (no HTTP answer)
    │   ├── ConnectError            ... before it left: refused, DNS, connect timeout
    │   ├── Timeout                 ... past the attempt's total deadline
    │   └── OutcomeUnknown          ... after a write may have reached the server (not sent again)
    ├── ResponseTooLarge            the answer passed max_response_bytes
    ├── DecodeError                 the server's answer does not fit the model (carries a snippet)
    └── APIStatusError              the server answered with an error status
        ├── BadRequest              400 (validation, eConnector down, version too old)
        ├── Unauthorized            401 (bad key, missing API permission)
        ├── NotFound                404
        ├── Gone                    410 (deprecated method)
        ├── Throttled               429 or a throttle answer, after the retries ran out
        └── ServerError             5xx
            └── GatewayTimeout      504 (request ran past the server's 60 s limit)

Every error carries the HTTP method, the URL path (never a key: keys travel only in the Authorization
header) and the mode that answered; status errors also carry the status and the server's explanation text.
"""

from __future__ import annotations

from typing import Any

_SNIPPET = 200


class OpenDentalError(Exception):
    """Base class of every error odapi_async raises on purpose."""


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


class DecodeError(_RequestError):
    """The server's answer could not be read into the expected model."""

    def __init__(self, reason: str, *, method: str, path: str, mode: str | None, body: bytes | str) -> None:
        text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
        self.snippet = text[:_SNIPPET]
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
        self, *, status_code: int, method: str, path: str, mode: str | None, explanation: str
    ) -> None:
        self.status_code = status_code
        self.explanation = explanation
        detail = f": {explanation}" if explanation else ""
        mode_text = f" [{mode}]" if mode else ""
        super().__init__(
            f"{status_code} {method} {path}{mode_text}{detail}", method=method, path=path, mode=mode
        )


class BadRequest(APIStatusError):
    """400: the server refused the request (validation, eConnector not running, version too old)."""


class Unauthorized(APIStatusError):
    """401: the developer or customer key is wrong or lacks the API permission."""


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

    Check on the server (list the rows it would have made) before sending it again.
    """


class ResponseTooLarge(_RequestError):
    """The answer's body passed the session's ``max_response_bytes``; the read stopped there."""

    def __init__(self, *, limit: int, received: int, method: str, path: str, mode: str | None) -> None:
        self.limit = limit
        self.received = received
        super().__init__(
            f"{method} {path} [{mode}]: the answer passed {limit:,} bytes (max_response_bytes); read stopped",
            method=method,
            path=path,
            mode=mode,
        )


class SessionClosed(OpenDentalError, RuntimeError):
    """The session was closed (``aclose()`` or the end of its ``async with``); make a new one."""


class ThrottleUnavailable(OpenDentalError, RuntimeError):
    """The shared throttle (Redis) could not be asked, or gave no turn in time; the request was not sent."""
