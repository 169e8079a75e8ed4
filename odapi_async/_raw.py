"""The escape hatch's two forms beside plain JSON: a typed answer (``cast_to=``) and the raw answer.

``await od.request("GET", "/patients/12", cast_to=Patient)`` decodes with the same wire rules as the generated
methods (string booleans, zero dates → ``None``, the lenient second pass); ``cast_to=list[Patient]`` reads an
array; any other type msgspec can decode to (``dict[str, int]``, ``str``) is decoded leniently as msgspec does.

``await od.with_raw_response.request(...)`` returns a :class:`RawResponse`: status, headers and body of the
successful answer, to be parsed later (``.json()``, ``.parse(Model)``). An error status still raises, as in
every other call (the error carries the status and the server's text).
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar, get_args, get_origin

import httpx2
import msgspec

from odapi_async._codec import Model, WireDecodeError, decode_json, decode_list, decode_one
from odapi_async._request.interface import Answer, decode_or_raise

__all__ = ["AnswerSender", "RawRequests", "RawResponse", "reader_for"]

R = TypeVar("R")


def reader_for(cast_to: Any) -> Callable[[bytes], Any]:
    """Reads a body as ``cast_to`` (``None``: plain JSON), for :func:`decode_or_raise`."""
    return decode_json if cast_to is None else functools.partial(_decode, cast_to=cast_to)


def _decode(content: bytes, cast_to: Any) -> Any:
    if isinstance(cast_to, type) and issubclass(cast_to, Model):
        return decode_one(content, cast_to)
    args = get_args(cast_to)
    if (
        get_origin(cast_to) is list
        and len(args) == 1
        and isinstance(args[0], type)
        and issubclass(args[0], Model)
    ):
        return decode_list(content, args[0])
    try:
        return msgspec.json.decode(content, type=cast_to, strict=False)
    except msgspec.ValidationError as exc:
        raise WireDecodeError(f"does not fit {cast_to!r}: {exc}") from None
    except msgspec.DecodeError as exc:
        raise WireDecodeError(f"not valid JSON: {exc}") from None
    except TypeError as exc:  # msgspec refuses a type it cannot decode to
        raise TypeError(f"request(): cast_to={cast_to!r} is not a type msgspec can decode: {exc}") from None


@dataclass(frozen=True)
class RawResponse:
    """A successful answer as it came: status, headers, body; with the request's method, path and mode."""

    status_code: int
    headers: httpx2.Headers
    content: bytes
    method: str
    path: str
    mode: str
    _answer: Answer

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")

    def json(self) -> Any:
        """The body as JSON (``None`` for an empty body)."""
        return decode_or_raise(self._answer, decode_json)

    def parse(self, cast_to: type[R]) -> R:
        """The body decoded as ``cast_to`` (a model, ``list[Model]``, or any type msgspec decodes)."""
        result: R = decode_or_raise(self._answer, reader_for(cast_to))
        return result

    def __repr__(self) -> str:  # never the body: it may hold patient data
        return f"<RawResponse {self.status_code} {self.method} {self.path} [{self.mode}] {len(self.content)} bytes>"


class AnswerSender(Protocol):
    """What :class:`RawRequests` is handed: the session's way from a call of any path to its :class:`Answer`."""

    def __call__(
        self,
        method: str,
        path: str,
        params: Mapping[str, Any] | None,
        json: Mapping[str, Any] | None,
        idempotent: bool | None,
    ) -> Awaitable[Answer]: ...


class RawRequests:
    """``od.with_raw_response``: the escape hatch returning :class:`RawResponse` instead of decoded JSON."""

    def __init__(self, send: AnswerSender, owner: object) -> None:
        self._send = send
        self._owner = owner  # the session, for the repr only

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Mapping[str, Any] | None = None,
        idempotent: bool | None = None,
    ) -> RawResponse:
        """As :meth:`OpenDental.request`, but the answer is returned undecoded, with its status and headers."""
        answer = await self._send(method, path, params, json, idempotent)
        return RawResponse(
            status_code=answer.status_code,
            headers=answer.headers,
            content=answer.content,
            method=answer.method,
            path=answer.path,
            mode=answer.mode,
            _answer=answer,
        )

    def __repr__(self) -> str:
        return f"<RawRequests of {self._owner!r}>"
