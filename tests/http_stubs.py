"""A loopback HTTP server for provider tests: records each request and answers from a queue of replies."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web


@dataclass
class SeenRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class StubReply:
    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)


class StubServer:
    """Answers every request on 127.0.0.1 with the next queued reply (the last one repeats)."""

    def __init__(self) -> None:
        self.requests: list[SeenRequest] = []
        self._replies: deque[StubReply] = deque()
        self._runner: web.AppRunner | None = None
        self.base_url = ""

    def reply(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        self._replies.append(StubReply(status, body, headers or {}))

    @property
    def last(self) -> SeenRequest:
        return self.requests[-1]

    async def start(self) -> str:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.base_url = f"http://127.0.0.1:{port}"
        return self.base_url

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        body = orjson.loads(raw) if raw else None
        self.requests.append(
            SeenRequest(
                request.method, request.path, {k.lower(): v for k, v in request.headers.items()}, body
            )
        )
        reply = self._replies.popleft() if len(self._replies) > 1 else self._replies[0]
        payload = reply.body if isinstance(reply.body, bytes) else orjson.dumps(reply.body)
        return web.Response(
            status=reply.status, body=payload, headers=reply.headers, content_type="application/json"
        )
