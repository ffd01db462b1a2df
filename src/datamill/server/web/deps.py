"""What every page handler depends on: the web app's services, the signed-in session, the CSRF check."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

import jinja2
from fastapi import Depends, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from datamill.core.error_codes import ErrorCode
from datamill.server.context import ServerContext
from datamill.server.web.session import (
    CSRF_FIELD,
    CSRF_HEADER,
    SessionSigner,
    WebSession,
    current_session,
)
from datamill.services.adaptation.cancel import RunCanceller
from datamill.services.adaptation.quote import RunQuoter
from datamill.services.datasets.catalog import DatasetView


@dataclass(frozen=True)
class Web:
    """The services the pages use, built once per app (`datamill.server.web.create_web_app`)."""

    context: ServerContext
    signer: SessionSigner
    templates: Jinja2Templates
    quoter: RunQuoter
    canceller: RunCanceller

    def page(
        self, request: Request, name: str, session: WebSession | None, status_code: int = 200, **values: Any
    ) -> HTMLResponse:
        """Render template `name` with the session (for the header and the CSRF token) and `values`."""
        values |= {"session": session, "csrf_token": session.csrf_token if session else ""}
        return self.templates.TemplateResponse(request, name, values, status_code=status_code)


def dataset_status(dataset: DatasetView) -> str:
    """The status a page shows for a dataset: ``cancelled`` for one whose run was cancelled.

    The API keeps ``failed`` for it (the Adaption API's statuses, with ``error_data.code`` E0304), but a
    person who pressed Cancel expects to read that they did.
    """
    code = (dataset.error_data or {}).get("code")
    return "cancelled" if dataset.status == "failed" and code == ErrorCode.CANCELLED.value else dataset.status


def make_templates() -> Jinja2Templates:
    """The page templates, autoescaped, from the package."""
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("datamill.server.web", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["number"] = lambda v: "–" if v is None else f"{v:,}"
    env.filters["when"] = lambda v: "–" if v is None else v.strftime("%Y-%m-%d %H:%M")
    env.filters["dataset_status"] = dataset_status
    return Jinja2Templates(env=env)


def get_web(request: Request) -> Web:
    web: Web = request.app.state.web
    return web


WebDep = Annotated[Web, Depends(get_web)]


def signed_in(request: Request, web: WebDep) -> WebSession:
    """The session of the request; without one, the page redirects to the sign-in form."""
    return current_session(request, web.context, web.signer)


SessionDep = Annotated[WebSession, Depends(signed_in)]


async def csrf_checked(request: Request, session: SessionDep) -> WebSession:
    """The session, once the request proved it came from one of its pages (header or form field)."""
    sent = request.headers.get(CSRF_HEADER)
    if sent is None and "form" in request.headers.get("content-type", ""):
        value = (await request.form()).get(CSRF_FIELD)
        sent = value if isinstance(value, str) else None
    session.check_csrf(sent)
    return session


PostSession = Annotated[WebSession, Depends(csrf_checked)]
