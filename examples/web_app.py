"""A web backend over the Open Dental API: Starlette (FastAPI is built on it; see docs/web.md for its form).

    ODAPI_DEVELOPER_KEY=... PRACTICE_KEYS='{"smile": "<customer key>"}' uvicorn examples.web_app:app

The pattern:

- one session per customer key (per practice), created in the lifespan and shared by every request: the key's
  throttle, pools and learned tier live once per process, whatever the number of requests;
- ``priority="interactive"``: a request someone is waiting for goes ahead of bulk jobs of the same key;
- a short ``timeout=`` and few retries: a page that waits 60 s helps nobody;
- when the browser goes away, the SDK call is cancelled (:func:`cancel_on_disconnect`): its throttle turn and
  connection go back to the key at once instead of serving a reader who left;
- errors map to HTTP answers once, in an exception handler: no patient data in the message, never the key.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager
from typing import Any, TypeVar

import anyio
import msgspec
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from odapi_async import APIStatusError, InvalidParameter, NotFound, OpenDental, OpenDentalError

T = TypeVar("T")


class ClientGone(Exception):
    """The client disconnected before the answer was ready."""


async def cancel_on_disconnect(request: Request, work: Awaitable[T]) -> T:
    """Await ``work``; if the client disconnects first, cancel it and raise :class:`ClientGone`.

    Starlette does not cancel a handler when its client leaves; this watches the ASGI ``receive`` channel for
    ``http.disconnect`` beside the work. (For a GET the body is empty: its one ``http.request`` message is read
    and ignored here.)
    """
    outcome: list[tuple[bool, Any]] = []  # (True, result) or (False, the exception the work raised)
    async with anyio.create_task_group() as tg:

        async def watch() -> None:
            while True:
                message = await request.receive()
                if message["type"] == "http.disconnect":
                    tg.cancel_scope.cancel()
                    return

        async def run() -> None:
            try:
                outcome.append((True, await work))
            except Exception as exc:  # raised below, outside the task group (not as an ExceptionGroup)
                outcome.append((False, exc))
            tg.cancel_scope.cancel()  # done: stop watching

        tg.start_soon(watch)
        tg.start_soon(run)
    if outcome:
        ok, value = outcome[0]
        if ok:
            return value  # type: ignore[no-any-return]
        raise value
    if inspect.iscoroutine(work):
        work.close()  # cancelled before it began: close it, or Python warns it was never awaited
    request.app.state.disconnects += 1
    raise ClientGone


def practice(request: Request) -> OpenDental:
    sessions: Mapping[str, OpenDental] = request.app.state.sessions
    found = sessions.get(request.path_params["practice"])
    if found is None:
        raise NotFound(
            status_code=404,
            method=request.method,
            path=request.url.path,
            mode=None,
            explanation="no practice",
        )
    return found


def as_json(value: Any) -> Response:
    return Response(msgspec.json.encode(value), media_type="application/json")


async def get_patient(request: Request) -> Response:
    od = practice(request)
    patient = await cancel_on_disconnect(request, od.patients.get(int(request.path_params["patnum"])))
    return as_json(patient)


async def list_appointments(request: Request) -> Response:
    od = practice(request)
    filters = {
        k: request.query_params[k] for k in ("date", "dateStart", "dateEnd") if k in request.query_params
    }
    given = request.query_params.get("max_rows", "100")
    if not given.isdigit() or not 1 <= int(given) <= 1000:  # a page of a UI, not a table dump
        return JSONResponse({"error": "max_rows must be a whole number from 1 to 1000"}, status_code=422)
    max_rows = int(given)
    rows = await cancel_on_disconnect(request, od.appointments.list(**filters).collect(max_rows=max_rows))  # type: ignore[arg-type]
    return as_json(rows)


async def health(request: Request) -> Response:
    sessions: Mapping[str, OpenDental] = request.app.state.sessions
    return JSONResponse({name: {"mode": od.mode, "key_id": od.key_id} for name, od in sessions.items()})


async def on_error(request: Request, exc: Exception) -> Response:
    if isinstance(exc, ClientGone):
        return Response(status_code=499)  # nobody reads it; the status is for the access log
    if isinstance(exc, InvalidParameter):
        return JSONResponse({"error": str(exc)}, status_code=422)
    if isinstance(exc, NotFound):
        return JSONResponse({"error": "not found"}, status_code=404)
    if isinstance(exc, APIStatusError) and exc.status_code < 500:
        return JSONResponse(
            {"error": f"Open Dental refused the request ({exc.status_code})"}, status_code=502
        )
    return JSONResponse({"error": "Open Dental is unavailable"}, status_code=503)


def sessions_lifespan(
    developer_key: str, practice_keys: Mapping[str, str], **session_options: Any
) -> Callable[[Any], AbstractAsyncContextManager[None]]:
    """The app's lifespan: one session per practice in ``app.state.sessions``, closed when the server stops.

    ``session_options`` go to every ``OpenDental`` (``endpoints=``, ``modes=``, ``hub=``...).
    """
    options: dict[str, Any] = {
        "priority": "interactive",
        "timeout": 20.0,
        "max_retries": 1,
        **session_options,
    }

    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            app.state.sessions = {
                name: await stack.enter_async_context(OpenDental(developer_key, key, **options))
                for name, key in practice_keys.items()
            }
            app.state.disconnects = 0
            yield  # the sessions close when the server stops

    return lifespan


def create_app(developer_key: str, practice_keys: Mapping[str, str], **session_options: Any) -> Starlette:
    """The app; ``session_options`` go to every ``OpenDental`` (``endpoints=``, ``modes=``, ``hub=``...)."""
    return Starlette(
        routes=[
            Route("/health", health),
            Route("/practices/{practice}/patients/{patnum:int}", get_patient),
            Route("/practices/{practice}/appointments", list_appointments),
        ],
        lifespan=sessions_lifespan(developer_key, practice_keys, **session_options),
        exception_handlers={ClientGone: on_error, OpenDentalError: on_error},
    )


def _from_environment() -> Starlette | None:
    keys = os.environ.get("PRACTICE_KEYS")
    developer_key = os.environ.get("ODAPI_DEVELOPER_KEY")
    if not keys or not developer_key:
        return None
    return create_app(developer_key, json.loads(keys))


app = _from_environment()
