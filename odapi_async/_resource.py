"""The hand-written base of every generated resource class, and the lazy attribute that makes one.

Generated classes (``resources/_generated``) hold one short method per operation that hands its
:class:`~odapi_async._operation.Operation` and arguments to :meth:`Resource._call` or :meth:`Resource._list`;
everything else (argument checks, encoding, decoding) lives here, and the sending is the request loop's: a
resource is handed a :class:`~odapi_async._request.interface.RequestPath`, never the session.
:class:`LazyResource` is the typed attribute (``od.appointments``) that imports and builds a resource on first use.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar, overload

from odapi_async._codec import (
    DynamicRow,
    WireDecodeError,
    decode_dynamic,
    decode_json,
    decode_list,
    decode_one,
)
from odapi_async._exceptions import InvalidParameter
from odapi_async._operation import Operation, build_body, build_path, build_query
from odapi_async._paging.paginator import Paginator
from odapi_async._paging.spec import list_info
from odapi_async._request.interface import decode_or_raise

if TYPE_CHECKING:
    from odapi_async._request.interface import RequestPath

_BODY_METHODS = ("POST", "PUT")
_GENERATED = "odapi_async.resources._generated"


class Resource:
    """One API resource bound to a session's request loop (``od.appointments``)."""

    _segment: str = ""

    def __init__(self, requests: RequestPath) -> None:
        self._requests = requests

    def __repr__(self) -> str:
        return f"<{type(self).__name__} resource /{self._segment}>"

    async def _call(self, op: Operation, path_values: Mapping[str, Any], values: Mapping[str, Any]) -> Any:
        path = build_path(op, path_values)
        if op.method in _BODY_METHODS:
            query: dict[str, str] = {}
            body: dict[str, Any] | None = build_body(op, values)
        else:
            query, body = build_query(op, values), None
        # The answer is never bound to a name here, so no frame of a traceback holds its body.
        return decode_or_raise(
            await self._requests.send_operation(op, path, query=query, body=body), op_reader(op)
        )

    def _list(
        self, op: Operation, path_values: Mapping[str, Any], values: Mapping[str, Any]
    ) -> Paginator[Any]:
        """A lazy stream over every page of a paginated operation."""
        params = dict(values)
        paging = {"Offset": params.pop("Offset", None), "Limit": params.pop("Limit", None)}
        build_query(op, paging, paging=True)  # type-checks Offset/Limit
        offset: int = paging["Offset"] or 0
        limit: int | None = paging["Limit"]
        if offset < 0 or (limit is not None and limit < 1):
            bad = "Offset" if offset < 0 else "Limit"
            raise InvalidParameter(
                f"{op.name}() parameter {bad!r} must be {'>= 0' if bad == 'Offset' else '>= 1'}, "
                f"got {paging[bad]!r}",
                operation=op.name,
                parameter=bad,
            )
        # Check everything now, so a typo fails on the caller's line, not on first iteration.
        path = build_path(op, path_values)
        if op.method in _BODY_METHODS:
            query: dict[str, str] = {}
            body: dict[str, Any] | None = build_body(op, params)
        else:
            query = build_query(op, params, paging=True)
            body = None
        requests = self._requests
        read = op_reader(op)
        # What is listed, for the repr (the filters' names, never their values), progress and DataFrames.
        info = list_info(op.name, op.model, params, mode=lambda: requests.mode)
        telemetry = requests.telemetry

        async def fetch(page_offset: int, page_limit: int) -> list[Any]:
            page_query = {**query, "Offset": str(page_offset), "Limit": str(page_limit)}
            rows = decode_or_raise(await requests.send_operation(op, path, query=page_query, body=body), read)
            if not isinstance(rows, list):
                rows = [rows]
            info.rows_fetched += len(rows)  # what the list has brought in (repr, progress, DataFrames)
            info.pages_fetched += 1
            return rows

        return Paginator(
            fetch if telemetry is None else telemetry.counted(fetch, op.name),
            limit_for_page=requests.page_cap,
            prefetch_depth=requests.read_ahead_depth,
            offset=offset,
            limit=limit,
            primary_key=getattr(op.model, "__od_primary_key__", None),
            operation=op.name,
            info=info,
        )


def op_reader(op: Operation) -> Callable[[bytes], Any]:
    """Reads a successful answer's body into ``op``'s documented shape.

    An empty body where the spec documents one is an error for reads (a GET answering nothing is not "no
    row") and for lists (an empty body must not end a stream as if it were the last page). A write that
    answers with nothing keeps returning None: it was executed, and an error would invite the caller to
    send it again.
    """
    return functools.partial(_decode, op)


def _decode(op: Operation, content: bytes) -> Any:
    if op.returns == "none":
        return None
    if not content.strip():
        if op.method == "GET" or op.returns == "list":
            raise WireDecodeError(
                f"an empty body where the API documents {_SHAPES.get(op.returns, 'a value')}"
            )
        return None
    if op.model is DynamicRow:
        return decode_dynamic(content)
    if op.model is None:  # untyped answers get the same two shape repairs as typed ones
        data = decode_json(content)
        if op.returns == "list" and isinstance(data, dict):
            return [data]
        if op.returns == "object" and isinstance(data, list) and len(data) == 1 and isinstance(data[0], dict):
            return data[0]
        return data
    if op.returns == "list":
        return decode_list(content, op.model)
    return decode_one(content, op.model)


_SHAPES = {"list": "a JSON array", "object": "a JSON object", "string": "a JSON string"}


R = TypeVar("R", bound=Resource)


class HasRequests(Protocol):
    """What a :class:`LazyResource` is read on: the session (its views), holding the loop resources get."""

    @property
    def _requests(self) -> RequestPath: ...


class LazyResource(Generic[R]):
    """``od.appointments``: the resource class of ``segment``, imported and built on first use, per view.

    A non-data descriptor (like ``functools.cached_property``): the built resource is stored on the instance,
    so the next read is a plain attribute. ``with_options`` views are new instances: each builds its own,
    bound to its own request loop.
    """

    def __init__(self, segment: str, name: str) -> None:
        self._segment = segment
        self._name = name
        self._attr = segment
        self.__doc__ = f"``/{segment}``."

    def __set_name__(self, owner: type, attr: str) -> None:
        self._attr = attr

    @overload
    def __get__(self, obj: None, owner: type | None = None) -> LazyResource[R]: ...

    @overload
    def __get__(self, obj: HasRequests, owner: type | None = None) -> R: ...

    def __get__(self, obj: HasRequests | None, owner: type | None = None) -> LazyResource[R] | R:
        if obj is None:
            return self
        cls: type[R] = getattr(importlib.import_module(f"{_GENERATED}.{self._segment}"), self._name)
        resource = cls(obj._requests)
        obj.__dict__[self._attr] = resource
        return resource

    def __repr__(self) -> str:
        return f"<LazyResource {self._name} (/{self._segment})>"
