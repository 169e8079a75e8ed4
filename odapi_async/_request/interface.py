"""The request path's narrow interface: what resources and the paginator need from a session, and its answer.

Resources depend on :class:`RequestPath`, never on the session class (``docs/architecture.md``, "Layers"): the
session's request loop (``loop.py``) implements it and is what the resources are handed; nothing below the
session imports it. :class:`Prepared` is a request encoded once, :class:`Answer` a successful answer read whole.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import httpx2

from odapi_async._codec import WireDecodeError
from odapi_async._exceptions import DecodeError
from odapi_async._util.redact import Secret

if TYPE_CHECKING:
    from odapi_async._operation import Operation

__all__ = ["Answer", "ListTelemetry", "Prepared", "RequestPath", "decode_or_raise"]

T = TypeVar("T")


@dataclass(frozen=True)
class Answer:
    """A successful HTTP answer, read whole."""

    status_code: int
    content: bytes
    headers: httpx2.Headers
    method: str
    path: str
    mode: str
    keys: tuple[Secret, ...] = field(default=(), repr=False)  # to scrub from what a DecodeError quotes


def decode_or_raise(answer: Answer, read: Callable[[bytes], T]) -> T:
    """``read(answer.content)``; an answer that does not fit raises :class:`DecodeError` (keys scrubbed).

    Pass the answer straight from the call that got it (``decode_or_raise(await ..., read)``): then no frame of
    the traceback holds the body once this one has dropped it.
    """
    try:
        return read(answer.content)
    except WireDecodeError as exc:
        error = DecodeError(
            str(exc),
            method=answer.method,
            path=answer.path,
            mode=answer.mode,
            body=answer.content,
            secrets=(key.reveal() for key in answer.keys),
        )
    # Raised outside the except block and with the answer dropped: a traceback shown with its locals must not
    # print the body (a server that echoes the request's headers puts the key in it).
    del answer
    raise error


@dataclass(frozen=True)
class Prepared:
    """One request, checked and encoded, ready to be sent to any mode (the URL's base is the mode's)."""

    method: str
    path: str  # under the API root, starting with "/"
    query: str  # "" or "?a=b…", already percent-encoded
    payload: bytes | None
    idempotent: bool


class RequestPath(Protocol):
    """What a resource is handed (the session's :class:`~odapi_async._request.loop.RequestLoop`): send one
    operation, and the paging figures of the mode in use, read per page."""

    @property
    def mode(self) -> str: ...

    async def send_operation(
        self, op: Operation, path: str, *, query: dict[str, str], body: dict[str, Any] | None
    ) -> Answer: ...

    def page_cap(self) -> int: ...

    def read_ahead_depth(self) -> int: ...

    @property
    def telemetry(self) -> ListTelemetry | None:
        """The session's telemetry when it is on (``_request/telemetry.py``), else None."""
        ...


class ListTelemetry(Protocol):
    """What a list needs of the session's telemetry, when it is on."""

    def counted(
        self, fetch: Callable[[int, int], Awaitable[list[T]]], operation: str
    ) -> Callable[[int, int], Awaitable[list[T]]]: ...
