"""odapi_async: an asyncio SDK for the Open Dental REST API.

``OpenDental`` is the session (one per customer key); every resource of the API is an attribute of it.
"""

from odapi_async._codec import DynamicRow, Model
from odapi_async._exceptions import (
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
from odapi_async._hub import Hub, default_hub
from odapi_async._paging.paginator import Paginator
from odapi_async._raw import RawResponse
from odapi_async._request.permissions import PermissionWarning
from odapi_async._request.telemetry import Telemetry
from odapi_async._session import OpenDental
from odapi_async._settings import KeySettings, ThrottleStats
from odapi_async._throttle.backend import ProcessThrottle, ThrottleBackend
from odapi_async._throttle.redis import RedisThrottle
from odapi_async._util.logenv import configure_from_env
from odapi_async._util.logfilter import redact_transport_logs
from odapi_async._util.optional import MissingExtra
from odapi_async._version import __version__

configure_from_env()  # ODAPI_LOG=debug|info|warning: the SDK's log lines on stderr (see _util/logenv.py)

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
    "Telemetry",
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
