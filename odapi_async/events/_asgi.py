"""The receiver as a plain ASGI app: no framework needed to run it, mountable in Starlette or FastAPI.

Run alone (``uvicorn module:app``), its lifespan starts and stops the receiver. Mounted inside another app,
the host's lifespan must do it (``async with receiver:``): Starlette does not run a mounted app's lifespan.
Any path answers, since an office may append ``/patientevent`` or ``?type=…`` to its ``EndPointUrl``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from contextlib import AsyncExitStack
from typing import TYPE_CHECKING, Any

import anyio

if TYPE_CHECKING:
    from odapi_async.events._receiver import EventReceiver

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

#: A call whose body has not arrived in this time is refused (every read has a bound).
BODY_TIMEOUT = 30.0


class EventsApp:
    """ASGI app: ``POST`` a webhook → :meth:`EventReceiver.handle` → its status and text."""

    def __init__(
        self,
        receiver: EventReceiver,
        *,
        lifespan: bool = True,
        event_type: str | None = None,
        body_timeout: float = BODY_TIMEOUT,
    ) -> None:
        self.receiver = receiver
        self.lifespan = lifespan
        self.event_type = event_type  # for offices older than 22.4.35, which send no Event-Type header
        self.body_timeout = body_timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "http":
            await self._http(scope, receive, send)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] != "POST":
            await _answer(send, 405, "Send API events with POST.", [(b"allow", b"POST")])
            return
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]]
        limit = self.receiver.max_body_bytes
        declared = next((v for k, v in headers if k.lower() == "content-length"), None)
        if declared is not None and declared.strip().isdigit() and int(declared) > limit:
            await _answer(send, 400, f"The body is larger than {limit} bytes.")
            return
        body = bytearray()
        with anyio.move_on_after(self.body_timeout) as scope_timer:
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return
                body += message.get("body", b"")
                if len(body) > limit:
                    await _answer(send, 400, f"The body is larger than {limit} bytes.")
                    return
                if not message.get("more_body", False):
                    break
        if scope_timer.cancelled_caught:
            await _answer(send, 400, "The body did not arrive in time.")
            return
        status, text = await self.receiver.handle(headers, bytes(body), event_type=self.event_type)
        await _answer(send, status, text)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        async with AsyncExitStack() as stack:
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    if self.lifespan:
                        try:
                            await stack.enter_async_context(self.receiver)
                        except Exception as exc:
                            await send({"type": "lifespan.startup.failed", "message": type(exc).__name__})
                            return
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await stack.aclose()
                    await send({"type": "lifespan.shutdown.complete"})
                    return


async def _answer(send: Send, status: int, text: str, extra: list[tuple[bytes, bytes]] | None = None) -> None:
    body = text.encode()
    headers = [
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", str(len(body)).encode()),
        *(extra or []),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
