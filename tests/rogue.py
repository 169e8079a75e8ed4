"""A hand-written HTTP/1.1 server that misbehaves on purpose, over a real socket (importable as ``rogue``).

Each test gives it a function from the request (method, target, headers, body) to the raw answer bytes, so it can
send what no well-behaved framework would: a 200 with nothing in it, a page echoing the request headers, a list
answered with a bare object, the same page whatever the Offset.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit


@dataclass
class Request:
    method: str
    target: str
    headers: dict[str, str]
    body: bytes

    @property
    def path(self) -> str:
        return urlsplit(self.target).path

    @property
    def query(self) -> dict[str, str]:
        return dict(parse_qsl(urlsplit(self.target).query))


def answer(status: int, body: bytes | str = b"", content_type: str = "application/json") -> bytes:
    """The raw bytes of one HTTP/1.1 answer that closes the connection."""
    data = body.encode() if isinstance(body, str) else body
    head = (
        f"HTTP/1.1 {status} X\r\nContent-Type: {content_type}\r\nContent-Length: {len(data)}\r\n"
        "Connection: close\r\n\r\n"
    )
    return head.encode() + data


def json_answer(value: Any, status: int = 200) -> bytes:
    return answer(status, json.dumps(value))


@dataclass
class RogueServer:
    respond: Callable[[Request], bytes]
    requests: list[Request] = field(default_factory=list)
    url: str = ""
    _server: asyncio.base_events.Server | None = None

    async def __aenter__(self) -> RogueServer:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}/api/v1"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=10)
            lines = head.decode("latin-1").split("\r\n")
            method, target, _ = lines[0].split(" ", 2)
            headers = {}
            for line in lines[1:]:
                if ":" in line:
                    name, value = line.split(":", 1)
                    headers[name.strip().lower()] = value.strip()
            length = int(headers.get("content-length", "0"))
            body = await asyncio.wait_for(reader.readexactly(length), timeout=10) if length else b""
            request = Request(method, target, headers, body)
            self.requests.append(request)
            writer.write(self.respond(request))
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass  # the client went away: nothing to answer
        finally:
            writer.close()
            try:
                await writer.wait_closed()
            except ConnectionError:
                pass
