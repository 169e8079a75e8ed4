"""The request path's narrow interface: what resources and the paginator need from a session, and its answer.

Resources depend on :class:`RequestPath`, never on the session class (``docs/architecture.md``, "Layers"): the
session implements it, and imports the resources; nothing below imports the session.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import httpx2

from ._exceptions import DecodeError
from ._redact import Secret

if TYPE_CHECKING:
    from ._codec import WireDecodeError
    from ._operation import Operation

__all__ = ["Answer", "Prepared", "RequestPath"]


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

    def decode_error(self, reason: WireDecodeError) -> DecodeError:
        """The error to raise when this answer does not fit the expected shape (keys scrubbed from it)."""
        return DecodeError(
            str(reason),
            method=self.method,
            path=self.path,
            mode=self.mode,
            body=self.content,
            secrets=(key.reveal() for key in self.keys),
        )


@dataclass(frozen=True)
class Prepared:
    """One request, checked and encoded, ready to be sent to any mode (the URL's base is the mode's)."""

    method: str
    path: str  # under the API root, starting with "/"
    query: str  # "" or "?a=b…", already percent-encoded
    payload: bytes | None
    idempotent: bool


class RequestPath(Protocol):
    """What a resource calls: send one operation, and the paging figures of the mode in use."""

    async def _send_operation(
        self, op: Operation, path: str, *, query: dict[str, str], body: dict[str, Any] | None
    ) -> Answer: ...

    def _page_cap(self) -> int: ...

    def _prefetch_depth(self) -> int: ...
