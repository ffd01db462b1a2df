"""How the web app answers errors: an HTML page for a browser, the API's JSON error shape for a script.

A request wants JSON when it is a script call of the pages (``Accept: application/json``) or an unknown
path under ``/api/`` (which must keep answering like the API). Without a session a page redirects to the
sign-in form. Another tenant's id is a 404 exactly like an unknown one, because the services say so.
"""

from __future__ import annotations

import http
import logging
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from datamill.core.errors import Issue, ValidationError
from datamill.server.errors import SERVICE_STATUS, respond_error, route_not_found
from datamill.server.web.deps import Web
from datamill.server.web.session import CsrfRejected, SignInRequired
from datamill.services.adaptation.launch import InsufficientCreditsError
from datamill.services.adaptation.quote import RunConfigError
from datamill.services.errors import ServiceError

log = logging.getLogger(__name__)

_STATUS: tuple[tuple[type[Exception], int], ...] = (
    *SERVICE_STATUS.items(),
    (InsufficientCreditsError, 402),
    (RunConfigError, 500),
    (CsrfRejected, 403),
)


def wants_json(request: Request) -> bool:
    path = request.url.path
    return path.startswith("/api/") or "application/json" in request.headers.get("accept", "")


def _answer(request: Request, status: int, message: str, issues: tuple[Issue, ...] = ()) -> Response:
    if wants_json(request):
        return respond_error(request, status, message, issues)
    web: Web = request.app.state.web
    return web.page(
        request,
        "error.html",
        None,
        status_code=status,
        status=status,
        title=http.HTTPStatus(status).phrase,
        message=message,
        issues=issues,
    )


async def _on_sign_in(request: Request, _exc: Exception) -> Response:
    if wants_json(request):
        return respond_error(request, 401, "sign in first: your session is missing or has expired")
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    if request.method != "GET":  # a form posted from an expired session: start over from the list
        target = "/datasets"
    return RedirectResponse(f"/login?next={quote(target)}", status_code=303)


async def _on_validation(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ValidationError)
    return _answer(request, 400, str(exc), tuple(exc.issues))


async def _on_request_validation(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    issues = tuple(
        Issue(".".join(str(p) for p in err.get("loc", ())[1:]) or "body", str(err.get("msg", "invalid")))
        for err in exc.errors()
    )
    return _answer(request, 400, "; ".join(f"{i.field}: {i.reason}" for i in issues), issues)


async def _on_service(request: Request, exc: Exception) -> Response:
    status = next((code for kind, code in _STATUS if isinstance(exc, kind)), 400)
    return _answer(request, status, str(exc))


async def _on_http(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    message = exc.detail if isinstance(exc.detail, str) else http.HTTPStatus(exc.status_code).phrase
    if exc.status_code == 404 and exc.detail == "Not Found":
        if request.url.path.startswith("/api/"):
            return respond_error(request, 404, route_not_found(request.url.path))
        message = "no such page"
    return _answer(request, exc.status_code, message)


async def _on_bug(request: Request, exc: Exception) -> Response:
    log.error("unhandled error in %s %s", request.method, request.url.path, exc_info=exc)
    return _answer(request, 500, "internal server error; the server log has the details")


def install_web_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(SignInRequired, _on_sign_in)
    app.add_exception_handler(ValidationError, _on_validation)
    app.add_exception_handler(RequestValidationError, _on_request_validation)
    app.add_exception_handler(ServiceError, _on_service)
    app.add_exception_handler(CsrfRejected, _on_service)
    app.add_exception_handler(StarletteHTTPException, _on_http)
    app.add_exception_handler(Exception, _on_bug)
