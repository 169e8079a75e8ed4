"""The hand-written base of every generated resource class.

Generated classes (``resources/_generated``) hold one short method per operation that hands its
:class:`~odapi_async._operation.Operation` and arguments to :meth:`Resource._call` or :meth:`Resource._list`;
everything else (argument checks, encoding, the session's throttle/retry path, decoding) lives here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ._codec import DynamicRow, WireDecodeError, decode_dynamic, decode_json, decode_list, decode_one
from ._operation import Operation, build_body, build_path, build_query
from ._paginate import Paginator
from ._rows import describe

if TYPE_CHECKING:
    from ._request import Answer, RequestPath

_BODY_METHODS = ("POST", "PUT")


class Resource:
    """One API resource bound to a session (``od.appointments``)."""

    _segment: str = ""

    def __init__(self, session: RequestPath) -> None:
        self._session = session

    def __repr__(self) -> str:
        return f"<{type(self).__name__} resource /{self._segment}>"

    async def _call(self, op: Operation, path_values: Mapping[str, Any], values: Mapping[str, Any]) -> Any:
        path = build_path(op, path_values)
        if op.method in _BODY_METHODS:
            answer = await self._session._send_operation(op, path, query={}, body=build_body(op, values))
        else:
            answer = await self._session._send_operation(op, path, query=build_query(op, values), body=None)
        return decode_answer(op, answer)

    def _list(
        self, op: Operation, path_values: Mapping[str, Any], values: Mapping[str, Any]
    ) -> Paginator[Any]:
        """A lazy stream over every page of a paginated operation."""
        params = dict(values)
        paging = {"Offset": params.pop("Offset", None), "Limit": params.pop("Limit", None)}
        build_query(op, paging, paging=True)  # type-checks Offset/Limit
        offset: int = paging["Offset"] or 0
        limit: int | None = paging["Limit"]
        # Check everything now, so a typo fails on the caller's line, not on first iteration.
        path = build_path(op, path_values)
        if op.method in _BODY_METHODS:
            query: dict[str, str] = {}
            body: dict[str, Any] | None = build_body(op, params)
        else:
            query = build_query(op, params, paging=True)
            body = None
        session = self._session

        async def fetch(page_offset: int, page_limit: int) -> list[Any]:
            page_query = {**query, "Offset": str(page_offset), "Limit": str(page_limit)}
            answer = await session._send_operation(op, path, query=page_query, body=body)
            rows = decode_answer(op, answer)
            return rows if isinstance(rows, list) else [rows]

        paginator: Paginator[Any] = Paginator(
            fetch,
            limit_for_page=session._page_cap,
            prefetch_depth=session._prefetch_depth,
            offset=offset,
            limit=limit,
        )
        return describe(
            paginator, op.name, op.model, params, session
        )  # its repr names the filters, never their values


def decode_answer(op: Operation, answer: Answer) -> Any:
    """Decode a successful answer into the operation's documented shape."""
    content = answer.content
    try:
        if op.returns == "none" or not content.strip():
            return None if op.returns != "list" else []
        if op.model is DynamicRow:
            return decode_dynamic(content)
        if op.model is None:
            return decode_json(content)
        if op.returns == "list":
            return decode_list(content, op.model)
        return decode_one(content, op.model)
    except WireDecodeError as exc:
        raise answer.decode_error(exc) from None
