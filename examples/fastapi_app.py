"""The same web backend as ``web_app.py``, written with FastAPI: sessions from the lifespan, one per practice.

    ODAPI_DEVELOPER_KEY=... PRACTICE_KEYS='{"smile": "<customer key>"}' uvicorn examples.fastapi_app:app

FastAPI is Starlette underneath, so the pieces that matter are shared with ``web_app.py``: the sessions made in
the lifespan, ``cancel_on_disconnect`` (a client that leaves cancels its SDK call), and one error handler that maps
the SDK's errors to HTTP answers.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Query, Request
from fastapi.responses import Response
from web_app import ClientGone, as_json, cancel_on_disconnect, on_error, sessions_lifespan

from odapi_async import NotFound, OpenDental, OpenDentalError


def practice(request: Request, practice: str) -> OpenDental:
    """A dependency: the session of the practice named in the path."""
    found = request.app.state.sessions.get(practice)
    if found is None:
        raise NotFound(
            status_code=404, method=request.method, path=request.url.path, mode=None, explanation=""
        )
    return found  # type: ignore[no-any-return]


Practice = Annotated[OpenDental, Depends(practice)]


def create_app(developer_key: str, practice_keys: Mapping[str, str], **session_options: Any) -> FastAPI:
    """The app; ``session_options`` go to every ``OpenDental`` (``endpoints=``, ``modes=``, ``hub=``...)."""
    app = FastAPI(lifespan=sessions_lifespan(developer_key, practice_keys, **session_options))
    app.add_exception_handler(ClientGone, on_error)
    app.add_exception_handler(OpenDentalError, on_error)

    @app.get("/health")
    async def health(request: Request) -> dict[str, Any]:
        return {
            name: {"mode": od.mode, "key_id": od.key_id} for name, od in request.app.state.sessions.items()
        }

    @app.get("/practices/{practice}/patients/{patnum}")
    async def get_patient(request: Request, patnum: int, od: Practice) -> Response:
        return as_json(await cancel_on_disconnect(request, od.patients.get(patnum)))

    @app.get("/practices/{practice}/appointments")
    async def list_appointments(
        request: Request,
        od: Practice,
        date: str | None = None,
        max_rows: Annotated[int, Query(ge=1, le=1000)] = 100,  # a page of a UI, not a table dump
    ) -> Response:
        filters = {"date": date} if date is not None else {}
        rows = od.appointments.list(**filters).collect(max_rows=max_rows)  # type: ignore[arg-type]
        return as_json(await cancel_on_disconnect(request, rows))

    return app


def _from_environment() -> FastAPI | None:
    keys = os.environ.get("PRACTICE_KEYS")
    developer_key = os.environ.get("ODAPI_DEVELOPER_KEY")
    if not keys or not developer_key:
        return None
    return create_app(developer_key, json.loads(keys))


app = _from_environment()
