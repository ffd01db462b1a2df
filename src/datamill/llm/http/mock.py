"""`MockTransport`: a `Transport` that answers from a function instead of the network, as httpx's does.

    def handler(request: HttpRequest) -> HttpReply:
        return HttpReply.of_json(200, {"choices": [...]})

    provider = OpenAIProvider(MockTransport(handler))

The handler may be a coroutine function, and may raise the errors a real transport raises
(`TransientError`, `ConnectionConfigError`) to play a failing network. Requests are checked as the real
transport checks them (a header value with a line break is refused before the handler sees it), and every
request is kept in `requests`.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from datamill.llm.http.interface import HttpReply, HttpRequest
from datamill.llm.http.transport import header_block

Handler = Callable[[HttpRequest], HttpReply | Awaitable[HttpReply]]


class MockTransport:
    """Answers every request with ``handler(request)``."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.requests: list[HttpRequest] = []
        self.closed = False

    async def post_json(
        self,
        url: str,
        payload: Any,
        *,
        headers: dict[str, str] | None = None,
        timeout_s: float = 120.0,
        proxy: str | None = None,
    ) -> HttpReply:
        header_block(headers)  # refuses what the real transport refuses
        request = HttpRequest("POST", url, dict(headers or {}), orjson.dumps(payload), timeout_s, proxy)
        return await self._answer(request)

    async def request(
        self,
        method: str,
        url: str,
        *,
        body: bytes = b"",
        content_type: str | None = None,
        headers: dict[str, str] | None = None,
        timeout_s: float = 120.0,
        proxy: str | None = None,
    ) -> HttpReply:
        header_block(headers)
        sent = dict(headers or {})
        if content_type:
            sent.setdefault("Content-Type", content_type)
        return await self._answer(HttpRequest(method.upper(), url, sent, body, timeout_s, proxy))

    async def _answer(self, request: HttpRequest) -> HttpReply:
        self.requests.append(request)
        reply = self.handler(request)
        if inspect.isawaitable(reply):
            reply = await reply
        return reply

    async def aclose(self) -> None:
        self.closed = True
