"""Keeping patient data out of the transport's logs.

httpx2 logs every request at INFO with its full URL (``HTTP Request: GET http://…/patients?LName=Smith&Birthdate=…
"HTTP/1.1 200 OK"``), and Open Dental's filters carry names and birthdates: protected health information. The
SDK's own log lines name method, path and status only. For the transport's loggers, importing ``odapi_async``
installs :class:`QueryStringFilter`, which keeps each record but cuts the query string out of every URL in it
(``?…`` becomes ``?[redacted]``).

To keep full URLs (a development machine, no real patients)::

    odapi_async.redact_transport_logs(False)

To silence the transport's request lines altogether::

    logging.getLogger("httpx2").setLevel(logging.WARNING)
"""

from __future__ import annotations

import logging
import re
from typing import Any

#: Loggers of the transport that may show a URL. A filter on a logger does not apply to its children's records,
#: so httpcore2's are named one by one.
TRANSPORT_LOGGERS = (
    "httpx2",
    "httpcore2",
    "httpcore2.connection",
    "httpcore2.http11",
    "httpcore2.http2",
    "httpcore2.proxy",
    "httpcore2.socks",
)

REDACTED = "[redacted]"

# A URL's query: from "?" up to a blank, a quote or the end (the fragment goes too: it follows the query).
_QUERY = re.compile(r"((?:https?://|/)[^\s?\"'<>]*)\?[^\s\"'<>]*")


def strip_query_strings(text: str) -> str:
    """``text`` with the query string of every URL in it replaced by ``[redacted]``."""
    if "?" not in text:
        return text
    return _QUERY.sub(r"\1?" + REDACTED, text)


class QueryStringFilter(logging.Filter):
    """A logging filter that removes query strings from a record's message and arguments (never drops it)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = strip_query_strings(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(_clean(arg) for arg in record.args)
        elif isinstance(record.args, dict):
            record.args = {key: _clean(arg) for key, arg in record.args.items()}
        return True


def _clean(arg: Any) -> Any:
    if isinstance(arg, (int, float, bytes)) or arg is None:
        return arg
    text = str(arg)  # an httpx2.URL, a request: whatever the record will print
    cleaned = strip_query_strings(text)
    return arg if cleaned == text else cleaned


_FILTER = QueryStringFilter()


def redact_transport_logs(enabled: bool = True) -> None:
    """Strip query strings from the transport loggers' records (the default), or stop doing so."""
    for name in TRANSPORT_LOGGERS:
        logger = logging.getLogger(name)
        if enabled and _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
        elif not enabled:
            logger.removeFilter(_FILTER)
