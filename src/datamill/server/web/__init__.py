"""The web app: server-rendered pages for doing the whole job in a browser, mounted on ``/`` by the server.

Sign in with an API key (`auth`), upload and browse datasets (`datasets`), map columns and launch an
adaptation with a live estimate (`adapt`), watch it (`runs`), compare before and after (`compare`), read the
evaluation (`report`), download or publish the output (`downloads`), judge it against a rubric of one's own
(`custom_evals`), translate or localize it into a new dataset (`expand`); and generate: upload seeds and
create specs (`gen_seeds`, `gen_specs`), launch and watch runs and browse their samples (`gen_runs`,
`gen_samples`), evaluate them (`gen_evals`). Pages call the `datamill.services`
services directly, so they apply the same validation and messages as the wire API, scoped to the signed-in
tenant. Templates and the small script and stylesheet ship in the package; there is no build step.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from datamill.server.context import ServerContext
from datamill.server.signing import load_or_create_secret
from datamill.server.web import (
    adapt,
    auth,
    compare,
    custom_evals,
    datasets,
    downloads,
    expand,
    gen_evals,
    gen_runs,
    gen_seeds,
    gen_specs,
    report,
    runs,
)
from datamill.server.web.deps import Web, make_templates
from datamill.server.web.errors import install_web_error_handlers
from datamill.server.web.session import SessionSigner
from datamill.services.adaptation.cancel import RunCanceller


def create_web_app(context: ServerContext) -> FastAPI:
    """The web app over `context`'s services; mount it last, on ``/``."""
    settings = context.settings
    secret = settings.signing_secret or load_or_create_secret(settings.secret_path)
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    app.state.web = Web(
        context=context,
        signer=SessionSigner(secret),
        templates=make_templates(),
        quoter=context.runs.quoter,
        canceller=RunCanceller(context.store, context.runs.settings, settings.data_dir),
    )
    app.state.context = context
    install_web_error_handlers(app)
    app.mount("/static", StaticFiles(packages=[("datamill.server.web", "static")]), name="static")
    for module in (auth, datasets, adapt, runs, compare, report, downloads, custom_evals, expand):
        app.include_router(module.router)
    for module in (gen_seeds, gen_specs, gen_runs, gen_evals):
        app.include_router(module.router)
    return app


__all__ = ["create_web_app"]
