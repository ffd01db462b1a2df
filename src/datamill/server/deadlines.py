"""Read deadlines for HTTP connections: a client must send its request headers, and keep its body moving.

uvicorn closes a kept-alive connection that stays idle between requests (``timeout_keep_alive``) but sets
no limit on how long a request's headers may take, so a client sending one header byte every few seconds
(slowloris) holds a connection, and its memory, for as long as it likes; a body that stops arriving holds
the request's handler the same way. `deadline_protocol` wraps uvicorn's own HTTP protocol classes (h11 or
httptools; this is the only part of the HTTP stack datamill writes itself, as uvicorn has no such setting)
with two timers:

- the **header deadline**: from the connection's start, or from the first byte of each later request,
  the headers must be complete within ``header_timeout_s``; the timer does not restart as bytes trickle in.
  When it passes, the client gets ``408 Request Timeout`` and the connection is closed.
- the **body idle limit**: once the headers are in and a body is expected, each stretch without body
  bytes may last at most ``body_timeout_s``. When it passes, the connection is closed; the handler sees
  the client disconnect (and its upload is discarded whole, as for any broken upload).

A proxy in front (see docs/deploy.md) usually enforces the same limits (nginx ``client_header_timeout``
and ``client_body_timeout``); these hold when there is none.
"""

from __future__ import annotations

import asyncio
import importlib.util
from typing import Any, Literal, cast

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from datamill.services.settings.server import ServerSettings

_TIMEOUT_BODY = b'{"statusCode": 408, "error": "Request Timeout", "message": "request headers took too long"}'
_TIMEOUT_REPLY = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\nconnection: close\r\n"
    b"content-length: %d\r\n\r\n%s" % (len(_TIMEOUT_BODY), _TIMEOUT_BODY)
)


class _Deadlines:
    """The mixin; see the module docstring. Relies on uvicorn's ``transport``, ``loop`` and ``cycle``."""

    header_timeout_s: float = 10.0
    body_timeout_s: float = 60.0
    transport: asyncio.Transport
    loop: asyncio.AbstractEventLoop
    cycle: Any

    _timer: asyncio.TimerHandle | None = None
    _seen_cycle: Any = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)  # type: ignore[misc]
        self._arm(self.header_timeout_s)

    def data_received(self, data: bytes) -> None:
        waiting = self.cycle is None or self.cycle.response_complete
        if waiting and self.cycle is self._seen_cycle and self._timer is None:
            self._arm(self.header_timeout_s)  # the first bytes of the next request
        super().data_received(data)  # type: ignore[misc]
        cycle = self.cycle
        if cycle is None or (cycle is self._seen_cycle and cycle.response_complete):
            return
        self._seen_cycle = cycle
        if cycle.more_body and not cycle.response_complete:
            self._arm(self.body_timeout_s)  # body bytes arrived: the idle limit starts again
        else:
            self._disarm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)  # type: ignore[misc]

    def _arm(self, seconds: float) -> None:
        self._disarm()
        self._timer = self.loop.call_later(seconds, self._expired)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _expired(self) -> None:
        self._timer = None
        if self.transport.is_closing():
            return
        cycle = self.cycle
        if cycle is None or (cycle is self._seen_cycle and cycle.response_complete):
            self.transport.write(_TIMEOUT_REPLY)  # no request in progress: say why before closing
        self.transport.close()


def deadline_protocol(
    kind: Literal["h11", "httptools"], *, header_timeout_s: float, body_timeout_s: float
) -> type[asyncio.Protocol]:
    """Uvicorn's HTTP protocol of `kind`, with the header deadline and the body idle limit."""
    base = H11Protocol if kind == "h11" else HttpToolsProtocol
    limits = {"header_timeout_s": header_timeout_s, "body_timeout_s": body_timeout_s}
    made = type(f"Deadline{base.__name__}", (_Deadlines, base), limits)
    return cast("type[asyncio.Protocol]", made)


def server_config(
    app: Any, settings: ServerSettings, *, http: Literal["auto", "h11", "httptools"] = "auto", **options: Any
) -> uvicorn.Config:
    """The uvicorn configuration datamill serves `app` with.

    Its HTTP protocol carries the read deadlines of `settings` (httptools when installed, as uvicorn's
    ``auto``); `options` are passed on.
    """
    kind = http if http != "auto" else ("httptools" if importlib.util.find_spec("httptools") else "h11")
    protocol = deadline_protocol(
        kind, header_timeout_s=settings.header_timeout_s, body_timeout_s=settings.body_timeout_s
    )
    return uvicorn.Config(app, http=protocol, **options)
