"""The headers every response carries.

`SecurityHeaders` (ASGI middleware) adds ``X-Content-Type-Options: nosniff``, ``X-Frame-Options: DENY`` with
the matching ``Content-Security-Policy: frame-ancestors 'none'``, and ``Referrer-Policy: no-referrer``
(signed links carry their credential in the URL, so no page may leak its address) to every response that
has not set them. A 500 for a bug is answered outside every middleware, so the error handlers add them with
`set_security_headers` too.
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

SECURITY_HEADERS = (
    ("x-content-type-options", "nosniff"),
    ("x-frame-options", "DENY"),
    ("content-security-policy", "frame-ancestors 'none'"),
    ("referrer-policy", "no-referrer"),
)
_RAW = tuple((name.encode(), value.encode()) for name, value in SECURITY_HEADERS)


def set_security_headers(headers: MutableHeaders) -> None:
    """Add each security header `headers` does not have yet."""
    for name, value in SECURITY_HEADERS:
        headers.setdefault(name, value)


class SecurityHeaders:
    """ASGI middleware: see the module docstring."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers.extend(item for item in _RAW if item[0] not in present)
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)
