"""What the emulator's own routes share below the app: plain-text and JSON answers, and loopback hosts.

Kept apart from ``app`` because ``events`` needs them too and ``app`` imports ``events``.
"""

from __future__ import annotations

import ipaddress
from typing import Any

import msgspec
from starlette.responses import Response

__all__ = ["is_loopback", "json_answer", "plain"]


def plain(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    """A plain-text answer, as the API sends its explanations."""
    return Response(message, status_code=status, headers=headers, media_type="text/plain; charset=utf-8")


def json_answer(obj: Any, status: int = 200) -> Response:
    return Response(msgspec.json.encode(obj), status_code=status, media_type="application/json")


def is_loopback(host: str) -> bool:
    """Whether ``host`` only accepts connections from this machine (127.0.0.0/8, ::1, localhost)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to any interface
