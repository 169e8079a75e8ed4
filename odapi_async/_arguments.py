"""Checking what a user passes to ``OpenDental(...)`` and ``request()``: each bad value raises
:class:`ConfigurationError` naming the argument, at construction, before any request.
"""

from __future__ import annotations

import math
import os
import re
import urllib.parse
from collections.abc import Mapping, Sequence

import httpx2

from odapi_async._exceptions import ConfigurationError
from odapi_async._settings import MODES, PRIORITIES, Mode, Priority
from odapi_async._util.redact import Secret

# What a key may hold: printable ASCII without spaces. Anything else cannot travel in a header, and httpx2/h11 would
# then fail with a message that quotes the whole header value (the key).
_KEY_TEXT = re.compile(r"[!-~]+")


def default_modes(service_host: str | None, endpoints: Mapping[str, str] | None) -> tuple[Mode, ...]:
    """Local, then Service when a service host (or endpoint) is given, then Remote."""
    given = endpoints or {}
    if service_host is not None or "service" in given:
        return ("local", "service", "remote")
    return ("local", "remote")


def text_or_empty(value: object) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ConfigurationError(f"keys must be text; got a {type(value).__name__}")
    return value


def read_key(given: Secret, env: str, what: str) -> Secret:
    """The key from the argument or the environment, checked; errors never quote it."""
    secret = Secret((given.reveal() or os.environ.get(env) or "").strip())
    if not secret.reveal():
        raise ConfigurationError(f"no {what} key: pass {what}_key= or set {env}")
    if not _KEY_TEXT.fullmatch(secret.reveal()):
        raise ConfigurationError(
            f"the {what} key holds characters an HTTP header cannot carry (spaces, control characters or "
            "non-ASCII): check how it was read"
        )
    return secret


def check_modes(modes: Sequence[Mode]) -> tuple[Mode, ...]:
    if isinstance(modes, str) or not isinstance(modes, Sequence):
        raise ConfigurationError(f"modes must be a sequence of mode names from {MODES}; got {modes!r}")
    found = tuple(modes)
    unknown = [m for m in found if m not in MODES]
    if not found or unknown or len(set(found)) != len(found):
        raise ConfigurationError(
            f"modes must be a non-empty subset of {MODES} without repeats; got {found!r}"
        )
    return found


def check_url(mode: str, url: object) -> str:
    if not isinstance(url, str):
        raise ConfigurationError(f"endpoints[{mode!r}] must be a URL string; got a {type(url).__name__}")
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigurationError(
            f"endpoints[{mode!r}] must be an http:// or https:// URL with a host, such as "
            f"'http://localhost:30222/api/v1'; got {url!r}"
        )
    if parts.query or parts.fragment or parts.username or parts.password:
        raise ConfigurationError(f"endpoints[{mode!r}] must not carry a query, fragment or user info")
    return url


def check_count(name: str, value: object, *, least: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise ConfigurationError(f"{name} must be a whole number >= {least}; got {value!r}")
    return value


def check_positive(name: str, value: object, *, zero: bool = False) -> float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and not math.isnan(value)
    if not ok or value < 0 or (value == 0 and not zero):  # type: ignore[operator]
        raise ConfigurationError(f"{name} must be a positive number of seconds; got {value!r}")
    return float(value)  # type: ignore[arg-type]


def make_timeout(timeout: float | httpx2.Timeout, connect: float) -> httpx2.Timeout:
    if isinstance(timeout, httpx2.Timeout):
        return timeout
    check_positive("timeout", timeout)
    check_positive("connect_timeout", connect)
    return httpx2.Timeout(timeout, connect=min(connect, timeout))


def check_priority(priority: str) -> Priority:
    if priority not in PRIORITIES:
        raise ConfigurationError(f"priority must be one of {PRIORITIES}; got {priority!r}")
    return priority


def check_request_path(path: str) -> str:
    """A path under the API root: no scheme or host, no ``..`` segment (also percent-encoded), no backslash."""
    if not isinstance(path, str):
        raise ConfigurationError(f"path must be text; got a {type(path).__name__}")
    decoded = urllib.parse.unquote(path)
    if "://" in path or path.startswith("//") or "\\" in decoded:
        raise ConfigurationError(f"request(): {path!r} is not a path under the API root (give '/patients/1')")
    if any(seg in ("..", ".") for seg in decoded.split("/")):
        raise ConfigurationError(
            f"request(): {path!r} leaves the API root ('.' and '..' segments are refused)"
        )
    return "/" + path.lstrip("/")
