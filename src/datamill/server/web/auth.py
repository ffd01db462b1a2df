"""Signing in with an API key and signing out.

The sign-in form is the one page without a session; it posts the key, which is checked like a bearer key
(`TenantService.authenticate`) and never stored: the cookie holds a signed token (`web.session`). A CSRF
token on the sign-in form itself is not needed, as a forged sign-in could only sign the victim in to the
forger's own tenant; SameSite=Lax keeps the session cookie off cross-site posts.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from datamill.server.web.deps import PostSession, WebDep
from datamill.server.web.session import clear_cookie, is_https, set_cookie, sign_in, sign_out

router = APIRouter()


def _safe_next(target: str | None) -> str:
    """A local path to go to after signing in (never another site)."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/datasets"


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, web: WebDep, next: str | None = None) -> HTMLResponse:
    return web.page(request, "login.html", None, next=_safe_next(next), error=None)


@router.post("/login", response_model=None)
def login(
    request: Request,
    web: WebDep,
    api_key: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/datasets",
) -> Response:
    token = sign_in(web.context, web.signer, api_key) if api_key.strip() else None
    if token is None:
        error = "enter an API key" if not api_key.strip() else "unknown or revoked API key"
        return web.page(request, "login.html", None, status_code=401, next=_safe_next(next), error=error)
    response = RedirectResponse(_safe_next(next), status_code=303)
    set_cookie(response, token, secure=is_https(request, web.context))
    return response


@router.post("/logout")
def logout(request: Request, web: WebDep, session: PostSession) -> RedirectResponse:
    sign_out(web.context, session)
    response = RedirectResponse("/login", status_code=303)
    clear_cookie(response, secure=is_https(request, web.context))
    return response


@router.get("/")
def home() -> RedirectResponse:
    return RedirectResponse("/datasets", status_code=303)
