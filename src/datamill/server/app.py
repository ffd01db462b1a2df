"""`create_app(settings)`: the datamill HTTP server as a FastAPI app, built on demand (never at import).

Startup migrates the database and starts the ingest workers, which pick up any upload a previous process left
unread, and the run worker (`datamill.runners`), which resumes the runs a previous process left unfinished;
shutdown gives the run in progress back to the queue, lets the file being read finish and releases the
database. Routes: the Adaption-compatible
API under ``/api/v1`` (`server.compat.adaption`), the upload links (`server.uploads`), ``/healthz``, the
OpenAPI description at ``/openapi.json`` with interactive docs at ``/docs``, and the web app on every other
path (`server.web`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import PackageNotFoundError, version

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool

from datamill.llm.guard import block_remote
from datamill.server import downloads_signed, uploads
from datamill.server.compat import (
    adaption,
    adaption_augment,
    adaption_autoscientist,
    adaption_catalog,
    adaption_combine,
    adaption_custom_evals,
    adaption_dataset_links,
    adaption_extend,
    adaption_invent,
    adaption_publish,
    adaption_responses,
    adaption_runs,
    dataframer_anonymization,
    dataframer_evaluations,
    dataframer_insights,
    dataframer_judges,
    dataframer_misc,
    dataframer_red_team,
    dataframer_runs,
    dataframer_seeds,
    dataframer_specs,
)
from datamill.server.context import ServerContext
from datamill.server.errors import install_error_handlers
from datamill.server.ratelimit import install_rate_limit
from datamill.server.request_guard import RequestGuard
from datamill.server.request_ids import RequestIds
from datamill.server.security_headers import SecurityHeaders
from datamill.server.web import create_web_app
from datamill.services.settings.server import ServerSettings
from datamill.services.settings.tree import DatamillSettings, load_settings


def _version() -> str:
    try:
        return version("datamill")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "0+unknown"


def create_app(
    settings: ServerSettings | DatamillSettings | None = None, *, context: ServerContext | None = None
) -> FastAPI:
    """Build the app for `settings` (default: the tree `load_settings` reads), or around a `context`.

    Called with no argument (``uvicorn --factory datamill.server:create_app``), it is the server's entry
    point: it reads the environment once and turns on the network guard if the settings ask for it.
    """
    if context is None and settings is None:
        settings = load_settings()
        if settings.llm.block_remote:
            block_remote(True)
    if context is not None:
        ctx = context
    elif isinstance(settings, DatamillSettings):
        ctx = ServerContext.from_settings(settings)
    else:
        assert settings is not None
        ctx = ServerContext.build(settings)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await run_in_threadpool(ctx.store.migrate)
        await run_in_threadpool(ctx.purge.sweep)
        await run_in_threadpool(ctx.ingest.start)
        await run_in_threadpool(ctx.imports.start)
        await ctx.custom_eval_runner.start()
        await run_in_threadpool(ctx.runs.start)
        try:
            yield
        finally:
            await run_in_threadpool(ctx.runs.close)
            await ctx.custom_eval_runner.close()
            await run_in_threadpool(ctx.imports.close)
            await run_in_threadpool(ctx.ingest.close)
            ctx.store.close()

    app = FastAPI(
        title="datamill",
        version=_version(),
        summary="Self-hostable engine that turns raw data into LLM training data.",
        description="Speaks the Adaption API: point the official `adaption` SDK's `base_url` here.",
        lifespan=lifespan,
    )
    app.state.context = ctx
    install_error_handlers(app)
    install_rate_limit(app, ctx)
    app.add_middleware(RequestGuard)  # outside the rate limit: a body is measured before its key is looked up
    app.add_middleware(SecurityHeaders)
    app.add_middleware(RequestIds)  # outermost: every answer, a refusal by the guards included, has an id
    app.include_router(uploads.router)
    # Static /datasets/combine paths before /datasets/{dataset_id}.
    app.include_router(adaption_combine.router, prefix="/api/v1")
    # Static /datasets/invent paths before /datasets/{dataset_id}, too.
    app.include_router(adaption_invent.router, prefix="/api/v1")
    app.include_router(adaption.router)
    app.include_router(adaption_custom_evals.router, prefix="/api/v1")
    app.include_router(adaption_publish.router, prefix="/api/v1")
    app.include_router(adaption_dataset_links.router, prefix="/api/v1")
    app.include_router(adaption_catalog.router, prefix="/api/v1")
    # After the catalogue's static /autoscientist/models and /recommend-hyperparams paths.
    app.include_router(adaption_autoscientist.router, prefix="/api/v1")
    app.include_router(adaption_responses.router, prefix="/api/v1")
    app.include_router(adaption_augment.router, prefix="/api/v1")
    app.include_router(adaption_extend.router, prefix="/api/v1")
    app.include_router(adaption_runs.router, prefix="/api/v1")
    app.include_router(downloads_signed.router)
    app.include_router(dataframer_misc.router)
    app.include_router(dataframer_seeds.router)
    app.include_router(dataframer_evaluations.router)
    app.include_router(dataframer_specs.router)
    app.include_router(dataframer_runs.router)
    app.include_router(dataframer_red_team.router)
    app.include_router(dataframer_judges.router)
    app.include_router(dataframer_insights.router)
    app.include_router(dataframer_anonymization.router)

    @app.get("/healthz", tags=["ops"])
    def healthz() -> dict[str, str]:
        """Liveness: answers while the process serves requests."""
        return {"status": "ok"}

    # Last: the web app answers every path the API did not claim (and JSON 404s for unknown /api/ paths).
    app.mount("/", create_web_app(ctx))
    return app
