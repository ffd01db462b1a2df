"""How the web app answers errors: an HTML page for a browser, the API's JSON error shape for a script.

A request wants JSON when it is a script call of the pages (``Accept: application/json``) or an unknown
path under ``/api/`` (which must keep answering like the API). Without a session a page redirects to the
sign-in form. Another tenant's id is a 404 exactly like an unknown one, because the services say so.

An error page keeps the app's layout: when the request has a valid session the header shows the navigation,
the balance and sign-out as on every page, and the page links back to where the user came from (the
browser's history: the server sends no ``Referer``-revealing policy, see `datamill.server.request_guard`) and
to the datasets.
"""

from __future__ import annotations

import http
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response

from datamill.server.errors import (
    SERVICE_STATUS,
    ErrorAnswer,
    install_error_handlers,
    respond_error,
    route_not_found,
)
from datamill.server.web.deps import Web
from datamill.server.web.session import CsrfRejected, SignInRequired, WebSession, current_session

#: The API's statuses, and the web app's own kind of error.
_STATUS: tuple[tuple[type[Exception], int], ...] = (*SERVICE_STATUS, (CsrfRejected, 403))


def wants_json(request: Request) -> bool:
    path = request.url.path
    return path.startswith("/api/") or "application/json" in request.headers.get("accept", "")


def _render(request: Request, answer: ErrorAnswer) -> Response:
    if wants_json(request):
        return respond_error(
            request, answer.status, answer.message, answer.issues, answer.headers, answer.code
        )
    web: Web = request.app.state.web
    return web.page(
        request,
        "error.html",
        _session_of(request, web),
        status_code=answer.status,
        status=answer.status,
        title=http.HTTPStatus(answer.status).phrase,
        message=answer.message,
        issues=answer.issues,
    )


def _session_of(request: Request, web: Web) -> WebSession | None:
    """The request's session for the page header, or None (signed out, or the store is what failed)."""
    try:
        return current_session(request, web.context, web.signer)
    except Exception:  # an error page must render whatever went wrong
        return None


def _not_found(path: str) -> str:
    return route_not_found(path) if path.startswith("/api/") else "no such page"


async def _on_sign_in(request: Request, _exc: Exception) -> Response:
    if wants_json(request):
        return respond_error(request, 401, "sign in first: your session is missing or has expired")
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    if request.method != "GET":  # a form posted from an expired session: start over from the list
        target = "/datasets"
    return RedirectResponse(f"/login?next={quote(target)}", status_code=303)


def install_web_error_handlers(app: FastAPI) -> None:
    """The server's one error table, rendered as pages; a missing session redirects to the sign-in form."""
    install_error_handlers(app, _render, statuses=_STATUS, not_found=_not_found)
    app.add_exception_handler(SignInRequired, _on_sign_in)
