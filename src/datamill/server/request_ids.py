"""A request id for every HTTP request, carried by the response and by every log line written for it.

`RequestIds` (ASGI middleware) takes the client's ``X-Request-ID`` when it is sane (1 to 128 characters of
letters, digits and ``._:-``; what a proxy such as nginx's ``$request_id`` or a tracing header sends), and
otherwise makes one (32 hex digits). The id is echoed in the response's ``X-Request-ID`` header, kept in
the request's scope, and set in `REQUEST_ID`, a context variable that follows the request into the
threads its handlers run in.

`RequestIdFilter` puts that id on each log record as ``request_id`` (``-`` outside a request), and
`log_config` is the logging setup the server runs with (the standard `logging` module, configured by
uvicorn through `logging.config.dictConfig`): one stream handler on stderr whose lines read
``<time> <LEVEL> <logger> [<request id>] <message>``, the traceback of an error following its line. The
access log and datamill's own loggers go through it alike, so every line about a request names it,
a 500's traceback included. That traceback is logged once: Starlette re-raises an error after its handler
answered, and uvicorn's "Exception in ASGI application" record of an error the handler logged
(`mark_logged`) is dropped.
"""

from __future__ import annotations

import contextlib
import logging
import re
import uuid
from contextvars import ContextVar
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

#: The id of the request being served (None outside a request).
REQUEST_ID: ContextVar[str | None] = ContextVar("datamill_request_id", default=None)
#: The scope key the id is kept under (read by the error handlers, which run outside this middleware).
SCOPE_KEY = "datamill.request_id"
HEADER = "x-request-id"
_SANE = re.compile(r"[A-Za-z0-9._:-]{1,128}")
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"


def accept_or_make(incoming: str | None) -> str:
    """The client's id when it is sane, else a new one."""
    if incoming is not None and _SANE.fullmatch(incoming):
        return incoming
    return uuid.uuid4().hex


def scope_request_id(scope: Scope) -> str | None:
    """The id `RequestIds` gave the request of `scope` (None when it has not seen it)."""
    value = scope.get(SCOPE_KEY)
    return value if isinstance(value, str) else None


class RequestIds:
    """ASGI middleware: see the module docstring."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = next(
            (
                value.decode("latin-1")
                for name, value in scope.get("headers", [])
                if name.lower() == b"x-request-id"
            ),
            None,
        )
        request_id = accept_or_make(incoming)
        scope[SCOPE_KEY] = request_id
        # Left set for the rest of the request's task: the error handlers, which run outside every
        # middleware, log with it (each request runs in a task of its own, with its own context).
        REQUEST_ID.set(request_id)
        encoded = request_id.encode("ascii")

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"x-request-id"]
                message = {**message, "headers": [*headers, (b"x-request-id", encoded)]}
            await send(message)

        await self.app(scope, receive, send_with_id)


class RequestIdFilter(logging.Filter):
    """Sets ``record.request_id`` to the id of the request being served (``-`` outside one)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = REQUEST_ID.get() or "-"
        return True


#: The attribute `mark_logged` sets on an exception whose traceback is in the log.
_LOGGED = "_datamill_logged"


def mark_logged(exc: BaseException) -> None:
    """Note that ``exc``'s traceback was logged, so the server's re-raise of it is not logged again."""
    with contextlib.suppress(AttributeError):  # an exception type with __slots__ and no __dict__
        setattr(exc, _LOGGED, True)


class DropRelogged(logging.Filter):
    """Drops a record whose exception's traceback `mark_logged` says is already in the log."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not (exc is not None and getattr(exc, _LOGGED, False))


def log_config(level: str = "info") -> dict[str, Any]:
    """The `logging.config.dictConfig` setup the server runs with (uvicorn's ``log_config``)."""
    upper = level.upper()
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_id": {"()": RequestIdFilter}, "relogged": {"()": DropRelogged}},
        "formatters": {"plain": {"format": LOG_FORMAT}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
                "filters": ["request_id", "relogged"],
                "formatter": "plain",
            }
        },
        "root": {"handlers": ["stderr"], "level": upper},
        "loggers": {
            "uvicorn": {"handlers": [], "level": upper, "propagate": True},
            "uvicorn.error": {"handlers": [], "level": upper, "propagate": True},
            "uvicorn.access": {"handlers": [], "level": upper, "propagate": True},
        },
    }
