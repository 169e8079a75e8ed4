"""uvicorn listeners that can go down and come back on the same port, and can reset a connection.

A listener owns its listening socket, so "down" is real: the socket is closed (connections are refused) and
open connections are aborted; "up" binds the same port again.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import Generator
from typing import Any

import uvicorn
from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

from odapi_async.emulator._server.app import ABORT_EXTENSION, ARRIVAL_EXTENSION, hard_abort


class AbortableH11Protocol(H11Protocol):
    """uvicorn's h11 protocol that lets the app reset its own connection, and tells it when a request arrived
    (both in ``scope["extensions"]``).

    The arrival is when the request's first bytes were read, before it waits for its task to run: under load the
    handler runs later than that, and stamping there would count a request the client sent on time as early.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._arrived: float | None = None  # the current request's first bytes (None between requests)
        inner: ASGIApp = self.app

        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            extensions = scope.setdefault("extensions", {})
            extensions[ABORT_EXTENSION] = lambda: hard_abort(self.transport)
            # a pipelined request (its bytes read with the one before) has no stamp of its own: now
            extensions[ARRIVAL_EXTENSION] = self._arrived if self._arrived is not None else time.monotonic()
            await inner(scope, receive, send)

        self.app = app

    def data_received(self, data: bytes) -> None:
        if self._arrived is None:
            self._arrived = time.monotonic()
        super().data_received(data)

    def on_response_complete(self) -> None:
        self._arrived = None  # the next bytes on this connection begin the next request
        super().on_response_complete()

    def kill(self) -> None:
        """Drop the connection at once (listener going down)."""
        if self.transport is not None and not self.transport.is_closing():
            hard_abort(self.transport)


class _QuietServer(uvicorn.Server):
    """A uvicorn server that leaves the process's signal handlers alone (it runs inside someone's loop)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


class Listener:
    """One HTTP listener (local, service or remote) on a fixed port."""

    def __init__(self, name: str, app: ASGIApp, host: str, port: int) -> None:
        self.name = name
        self.app = app
        self.host = host
        self.port = port
        self._server: _QuietServer | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def up(self) -> bool:
        return self._server is not None

    def _bind(self) -> socket.socket:
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        # proto must say TCP: asyncio only sets TCP_NODELAY on accepted sockets whose proto is IPPROTO_TCP,
        # and without it every answer sent in two writes waits ~40 ms for a delayed ACK.
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        sock.listen(2048)
        sock.setblocking(False)
        self.port = sock.getsockname()[1]
        return sock

    async def start(self) -> None:
        """Bind (the same port as before, if any) and serve; returns once accepting (at once when up)."""
        if self._server is not None:
            return  # already up (waiting on its task would wait for it to stop)
        if self._task is not None:
            await self._task  # a previous stop() is still winding down
            self._task = None
        sock = self._bind()
        config = uvicorn.Config(
            self.app,
            log_level="warning",
            access_log=False,
            http=AbortableH11Protocol,
            lifespan="off",
            timeout_graceful_shutdown=1,
            timeout_keep_alive=30,
        )
        server = _QuietServer(config)
        self._server = server
        self._task = asyncio.get_running_loop().create_task(server.serve(sockets=[sock]))
        while not server.started:
            if self._task.done():
                self._server = None
                self._task.result()  # raise what went wrong
                raise RuntimeError(f"listener {self.name} stopped during start-up")
            await asyncio.sleep(0.001)

    def stop(self) -> None:
        """Go down now: refuse new connections, drop open ones. Cleanup finishes in the background."""
        server = self._server
        if server is None:
            return
        self._server = None
        for srv in getattr(server, "servers", []):
            srv.close()  # closes the listening socket synchronously
        for conn in list(server.server_state.connections):
            kill = getattr(conn, "kill", None)
            if kill is not None:
                kill()
        server.should_exit = True

    async def aclose(self) -> None:
        self.stop()
        if self._task is not None:
            task, self._task = self._task, None
            await task
