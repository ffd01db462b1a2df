"""Every error as JSON in one shape, and the status each kind of error gets.

The body is NestJS-style, which the Adaption SDK surfaces verbatim (Adaption API)::

    {"statusCode": 400, "error": "Bad Request", "message": "...", "errors": [{"field": ..., "reason": ...}]}

| error                                          | status |
|------------------------------------------------|--------|
| ValidationError, a request FastAPI cannot parse | 400    |
| Unauthenticated (missing or bad API key)       | 401    |
| InsufficientCreditsError                       | 402    |
| UploadRejectedError (bad, expired, used link)  | 403    |
| NotFoundError, an unknown route                | 404    |
| ConflictError                                  | 409    |
| PayloadTooLargeError                           | 413    |
| NotReadyError                                  | 422    |
| IdempotencyKeyReusedError (key, other request) | 422    |
| RunConfigError (the server cannot serve runs)  | 500    |
| TrainingUnavailableError (no ``train`` extra)  | 501    |
| RunOutputMissingError (run storage not shared) | 503    |
| anything else (a bug)                          | 500    |

`describe` is the one table from an exception to its answer (status, message, field issues); the API and
the web app install it with `install_error_handlers`, each with its own way to render the answer (JSON in
the shape the path calls for, or an HTML page for a browser).

On the Dataframer-compatible paths (``/api/dataframer/``, ``/api/data-plane/``, ``/api/users/`` and the signed
download links) the body is instead the shape that SDK's own code reads::

    {"error": "...", "code": "<machine_code>", "details": [{"field": ..., "reason": ...}]}

with the code of a `CodedError` (``name_taken``, ``in_use``...) or one per status (``validation_error``,
``not_found``...); a `CodedError` also chooses its status (400 unless it says otherwise).

Every error answer carries ``x-should-retry: false``: the SDK retries 408, 409, 429 and 5xx by itself, and
none of these would succeed on an immediate retry. A bug is logged with its traceback, under the request's id
(`server.request_ids`), and answers a generic 500 that reveals nothing of the server but that id (its
``X-Request-ID`` header).
"""

from __future__ import annotations

import http
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from datamill.core.errors import Issue, ValidationError
from datamill.server.request_ids import REQUEST_ID, mark_logged, scope_request_id
from datamill.server.security_headers import set_security_headers
from datamill.services.adaptation.launch import InsufficientCreditsError
from datamill.services.adaptation.quote import RunConfigError
from datamill.services.autoscientist.catalog import TrainingUnavailableError
from datamill.services.errors import (
    ConflictError,
    IdempotencyKeyReusedError,
    NotFoundError,
    NotReadyError,
    PayloadTooLargeError,
    RunOutputMissingError,
    ServiceError,
    UploadRejectedError,
)
from datamill.services.generation.common import CodedError

log = logging.getLogger(__name__)

#: The status of each kind of service error (the first that matches; any other `ServiceError` is a 400).
SERVICE_STATUS: tuple[tuple[type[Exception], int], ...] = (
    (InsufficientCreditsError, 402),
    (RunConfigError, 500),
    (TrainingUnavailableError, 501),
    (RunOutputMissingError, 503),
    (NotFoundError, 404),
    (ConflictError, 409),
    (NotReadyError, 422),
    (UploadRejectedError, 403),
    (PayloadTooLargeError, 413),
)


#: Paths whose errors take the Dataframer shape (matched anywhere in the path, so a mount prefix is fine).
DATAFRAMER_PATHS = ("/api/dataframer/", "/api/data-plane/", "/api/users/", "/_downloads/")
_CODES = {
    400: "validation_error",
    401: "authentication_failed",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    422: "not_ready",
    500: "internal_error",
    503: "service_unavailable",
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


def dataframer_error(
    status: int,
    message: str,
    code: str | None = None,
    issues: Sequence[Issue] = (),
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """A JSON error in the Dataframer shape (``error``, ``code``, ``details``), marked not to be retried."""
    body: dict[str, Any] = {
        "error": message,
        "code": code or _CODES.get(status, "error"),
        "details": [issue.to_dict() for issue in issues],
    }
    return JSONResponse(body, status_code=status, headers={"x-should-retry": "false", **(headers or {})})


def is_dataframer_path(path: str) -> bool:
    """Whether errors on `path` take the Dataframer shape."""
    return any(marker in path for marker in DATAFRAMER_PATHS)


def respond_error(
    request: Request,
    status: int,
    message: str,
    issues: Sequence[Issue] = (),
    headers: dict[str, str] | None = None,
    code: str | None = None,
) -> JSONResponse:
    """A JSON error in the shape the request's path calls for (Dataframer or the shared one)."""
    if is_dataframer_path(request.url.path):
        return dataframer_error(status, message, code, issues, headers)
    return error_response(status, message, issues, headers)


def route_not_found(path: str) -> str:
    """The message of a 404 for a path no API route serves."""
    if is_dataframer_path(path):
        return "no such route of the Dataframer-compatible API (see /docs)"
    return "no such route; the API lives under /api/v1 (see /docs)"


def _field(loc: Sequence[int | str]) -> str:
    """``("body", "source", "files", 0)`` → ``source.files[0]``; the query or path part is dropped."""
    parts = list(loc[1:]) if loc and loc[0] in ("body", "query", "path", "header") else list(loc)
    field = ""
    for part in parts:
        field = f"{field}[{part}]" if isinstance(part, int) else (f"{field}.{part}" if field else str(part))
    return field or "body"


def _request_issues(exc: RequestValidationError) -> list[Issue]:
    return [Issue(_field(err.get("loc", ())), str(err.get("msg", "invalid"))) for err in exc.errors()]


@dataclass(frozen=True)
class ErrorAnswer:
    """What an error answers: status, message, field issues and, for the Dataframer shape, a code."""

    status: int
    message: str
    issues: tuple[Issue, ...] = ()
    code: str | None = None
    headers: dict[str, str] = field(default_factory=dict)


#: Renders an `ErrorAnswer` for a request (JSON for the API, a page or JSON for the web app).
Render = Callable[[Request, ErrorAnswer], Response]


def describe(
    request: Request,
    exc: Exception,
    statuses: Sequence[tuple[type[Exception], int]] = SERVICE_STATUS,
    not_found: Callable[[str], str] = route_not_found,
) -> ErrorAnswer:
    """The answer to `exc`: the one table of the module docstring. Logs a bug with its traceback."""
    if isinstance(exc, ValidationError):
        return ErrorAnswer(400, str(exc), tuple(exc.issues))
    if isinstance(exc, RequestValidationError):
        issues = tuple(_request_issues(exc))
        return ErrorAnswer(400, "; ".join(f"{i.field}: {i.reason}" for i in issues), issues)
    if isinstance(exc, IdempotencyKeyReusedError):
        reason = f"{exc.key!r} was already used for a request with different parameters"
        return ErrorAnswer(422, str(exc), (Issue(exc.field, reason),))
    if isinstance(exc, CodedError):
        return ErrorAnswer(exc.status, str(exc), (Issue(exc.field, str(exc)),) if exc.field else (), exc.code)
    if isinstance(exc, Unauthenticated):
        return ErrorAnswer(401, str(exc), headers={"WWW-Authenticate": "Bearer"})
    if isinstance(exc, StarletteHTTPException):
        message = exc.detail if isinstance(exc.detail, str) else http.HTTPStatus(exc.status_code).phrase
        if exc.status_code == 404 and exc.detail == "Not Found":
            message = not_found(request.url.path)
        return ErrorAnswer(exc.status_code, message, headers=dict(exc.headers or {}))
    if isinstance(exc, ClientDisconnect):
        # The client went away mid-request; nobody will read this answer, and it is not a server bug.
        return ErrorAnswer(400, "the client disconnected before the request body was complete")
    status = next((code for kind, code in statuses if isinstance(exc, kind)), None)
    if status is not None:
        issues = exc.issues if isinstance(exc, InsufficientCreditsError) else ()
        return ErrorAnswer(status, str(exc), issues)
    if isinstance(exc, ServiceError):
        return ErrorAnswer(400, str(exc))
    log.error("unhandled error in %s %s", request.method, request.url.path, exc_info=exc)
    mark_logged(exc)
    return ErrorAnswer(500, "internal server error; the server log has the details")


def respond_json(request: Request, answer: ErrorAnswer) -> Response:
    """The API's rendering: JSON in the shape the request's path calls for."""
    return respond_error(request, answer.status, answer.message, answer.issues, answer.headers, answer.code)


def install_error_handlers(
    app: FastAPI,
    render: Render = respond_json,
    *,
    statuses: Sequence[tuple[type[Exception], int]] = SERVICE_STATUS,
    not_found: Callable[[str], str] = route_not_found,
) -> None:
    """Answer every error on `app` through `describe`, rendered by `render`.

    Args:
        app: the app (the API, or the web app).
        render: how an answer becomes a response.
        statuses: the status of each kind of service error (the web app adds its own kinds).
        not_found: the message of a 404 for a path no route serves.
    """

    async def handle(request: Request, exc: Exception) -> Response:
        request_id = scope_request_id(request.scope)
        if request_id is not None:
            # A bug is handled outside every middleware: log, and answer, with the request's id.
            REQUEST_ID.set(request_id)
        response = render(request, describe(request, exc, statuses, not_found))
        if request_id is not None:
            response.headers["x-request-id"] = request_id
        set_security_headers(response.headers)  # a bug's 500 is answered outside SecurityHeaders
        return response

    kinds = (ValidationError, RequestValidationError, ServiceError, Unauthenticated, StarletteHTTPException)
    for kind in (*kinds, ClientDisconnect, *(kind for kind, _ in statuses), Exception):
        app.add_exception_handler(kind, handle)
