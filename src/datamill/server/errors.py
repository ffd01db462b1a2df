"""Every error as JSON in one shape, and the status each kind of error gets.

The body is NestJS-style, which the Adaption SDK surfaces verbatim (Adaption API)::

    {"statusCode": 400, "error": "Bad Request", "message": "...", "errors": [{"field": ..., "reason": ...}]}

| error                                          | status |
|------------------------------------------------|--------|
| ValidationError, a request FastAPI cannot parse | 400    |
| Unauthenticated (missing or bad API key)       | 401    |
| UploadRejectedError (bad, expired, used link)  | 403    |
| NotFoundError, an unknown route                | 404    |
| ConflictError                                  | 409    |
| PayloadTooLargeError                           | 413    |
| NotReadyError                                  | 422    |
| anything else (a bug)                          | 500    |

Every error answer carries ``x-should-retry: false``: the SDK retries 408, 409, 429 and 5xx by itself, and
none of these would succeed on an immediate retry. A bug is logged with its traceback and answers a generic
500 that reveals nothing of the server.
"""

from __future__ import annotations

import http
import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from datamill.api.errors import (
    ConflictError,
    NotFoundError,
    NotReadyError,
    PayloadTooLargeError,
    ServiceError,
    UploadRejectedError,
)
from datamill.core.errors import Issue, ValidationError

log = logging.getLogger(__name__)

_STATUS: dict[type[ServiceError], int] = {
    NotFoundError: 404,
    ConflictError: 409,
    NotReadyError: 422,
    UploadRejectedError: 403,
    PayloadTooLargeError: 413,
}


class Unauthenticated(Exception):
    """No API key, or one that is unknown or revoked."""


def error_response(
    status: int, message: str, issues: Sequence[Issue] = (), headers: dict[str, str] | None = None
) -> JSONResponse:
    """A JSON error in the shared shape, marked not to be retried."""
    body: dict[str, Any] = {
        "statusCode": status,
        "error": http.HTTPStatus(status).phrase,
        "message": message,
        "errors": [issue.to_dict() for issue in issues],
    }
    return JSONResponse(body, status_code=status, headers={"x-should-retry": "false", **(headers or {})})


def _field(loc: Sequence[int | str]) -> str:
    """``("body", "source", "files", 0)`` → ``source.files[0]``; the query or path part is dropped."""
    parts = list(loc[1:]) if loc and loc[0] in ("body", "query", "path", "header") else list(loc)
    field = ""
    for part in parts:
        field = f"{field}[{part}]" if isinstance(part, int) else (f"{field}.{part}" if field else str(part))
    return field or "body"


def _request_issues(exc: RequestValidationError) -> list[Issue]:
    return [Issue(_field(err.get("loc", ())), str(err.get("msg", "invalid"))) for err in exc.errors()]


async def _on_validation(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ValidationError)
    return error_response(400, str(exc), exc.issues)


async def _on_request_validation(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    issues = _request_issues(exc)
    return error_response(400, "; ".join(f"{i.field}: {i.reason}" for i in issues), issues)


async def _on_service(_request: Request, exc: Exception) -> JSONResponse:
    status = next((code for kind, code in _STATUS.items() if isinstance(exc, kind)), 400)
    return error_response(status, str(exc))


async def _on_unauthenticated(_request: Request, exc: Exception) -> JSONResponse:
    return error_response(401, str(exc), headers={"WWW-Authenticate": "Bearer"})


async def _on_http(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    message = exc.detail if isinstance(exc.detail, str) else http.HTTPStatus(exc.status_code).phrase
    if exc.status_code == 404 and exc.detail == "Not Found":
        message = "no such route; the API lives under /api/v1 (see /docs)"
    return error_response(exc.status_code, message, headers=dict(exc.headers or {}))


async def _on_disconnect(_request: Request, _exc: Exception) -> JSONResponse:
    # The client went away mid-request; nobody will read this answer, and it is not a server bug.
    return error_response(400, "the client disconnected before the request body was complete")


async def _on_bug(request: Request, exc: Exception) -> JSONResponse:
    log.error("unhandled error in %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(500, "internal server error; the server log has the details")


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers above on `app`."""
    app.add_exception_handler(ValidationError, _on_validation)
    app.add_exception_handler(RequestValidationError, _on_request_validation)
    app.add_exception_handler(ServiceError, _on_service)
    app.add_exception_handler(Unauthenticated, _on_unauthenticated)
    app.add_exception_handler(StarletteHTTPException, _on_http)
    app.add_exception_handler(ClientDisconnect, _on_disconnect)
    app.add_exception_handler(Exception, _on_bug)
