"""odapi_async: an asyncio SDK for the Open Dental REST API.

``OpenDental`` is the session (one per customer key); every resource of the API is an attribute of it.
"""

from ._backend import ProcessThrottle, ThrottleBackend
from ._codec import DynamicRow, Model
from ._exceptions import (
    APIStatusError,
    BadRequest,
    BodyTooLarge,
    ConfigurationError,
    ConnectError,
    DecodeError,
    GatewayTimeout,
    Gone,
    InvalidParameter,
    NotFound,
    OpenDentalError,
    OutcomeUnknown,
    PaginationError,
    ResponseTooLarge,
    ServerError,
    SessionClosed,
    Throttled,
    ThrottleUnavailable,
    Timeout,
    TransportError,
    Unauthorized,
    WriteGatewayTimeout,
)
from ._hub import Hub, default_hub
from ._logenv import configure_from_env
from ._logfilter import redact_transport_logs
from ._optional import MissingExtra
from ._paginate import Paginator
from ._permissions import PermissionWarning
from ._raw import RawResponse
from ._redis_throttle import RedisThrottle
from ._session import OpenDental
from ._settings import KeySettings, ThrottleStats
from ._version import __version__

configure_from_env()  # ODAPI_LOG=debug|info|warning: the SDK's log lines on stderr (see _logenv)

__all__ = [
    "APIStatusError",
    "BadRequest",
    "BodyTooLarge",
    "ConfigurationError",
    "ConnectError",
    "DecodeError",
    "DynamicRow",
    "GatewayTimeout",
    "Gone",
    "Hub",
    "InvalidParameter",
    "KeySettings",
    "MissingExtra",
    "Model",
    "NotFound",
    "OpenDental",
    "OpenDentalError",
    "OutcomeUnknown",
    "PaginationError",
    "Paginator",
    "PermissionWarning",
    "ProcessThrottle",
    "RawResponse",
    "RedisThrottle",
    "ResponseTooLarge",
    "ServerError",
    "SessionClosed",
    "ThrottleBackend",
    "ThrottleStats",
    "ThrottleUnavailable",
    "Throttled",
    "Timeout",
    "TransportError",
    "Unauthorized",
    "WriteGatewayTimeout",
    "__version__",
    "default_hub",
    "redact_transport_logs",
]

# httpx2 logs full URLs, and query strings carry patient names and birthdates: cut them out by default.
redact_transport_logs()
