"""Dataframer-compatible run routes: ``/api/dataframer/runs/...``, downloads included.

Create, list, retrieve, cancel, delete, one file's download and the ZIP of all files.

Handlers only translate between the wire and `datamill.services.generation.runs.RunService`. Downloads answer
JSON with a signed ``download_url`` (`datamill.server.downloads_signed`); the ZIP answers 202 with a null
URL while its job builds it, then 200 with the URL and its size.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from datamill.server.auth import Context, CurrentTenant, JsonBody
from datamill.server.compat.dataframer_gen_wire import parse_run_create, run_item_public, run_public
from datamill.server.compat.dataframer_schemas import (
    FileDownloadPublic,
    RunItemPublic,
    RunPublic,
    ZipDownloadPublic,
)
from datamill.server.downloads_signed import download_body, zip_answer
from datamill.services.generation.runs import RunService
from datamill.text.fetch_policy import FetchPolicy

router = APIRouter(prefix="/api/dataframer", tags=["dataframer: runs"])


def _service(context: Context) -> RunService:
    settings = context.runs.settings
    return RunService(
        context.store, context.blobs, settings.price_table, FetchPolicy.with_allowed(settings.fetch_allow)
    )


@router.post("/runs/", status_code=201, response_model=RunPublic)
def create_run(tenant: CurrentTenant, context: Context, body: JsonBody = None) -> RunPublic:
    """Start a generation run of a SUCCEEDED spec; it reads PENDING until a worker takes it."""
    return run_public(_service(context).create(tenant, parse_run_create(body)))


@router.get("/runs/", response_model=list[RunItemPublic])
def list_runs(tenant: CurrentTenant, context: Context) -> list[RunItemPublic]:
    """The tenant's runs, newest first (a bare array, without files and runtime parameters)."""
    return [run_item_public(run) for run in _service(context).list(tenant.id)]


@router.get("/runs/{run_id}/", response_model=RunPublic)
def retrieve_run(run_id: str, tenant: CurrentTenant, context: Context) -> RunPublic:
    """One run with its progress, and its generated files once it SUCCEEDED."""
    return run_public(_service(context).get(tenant.id, run_id))


@router.post("/runs/{run_id}/cancel/", status_code=204)
def cancel_run(run_id: str, tenant: CurrentTenant, context: Context) -> Response:
    """Cancel a PENDING or PROCESSING run; it stops generating and reads CANCELED."""
    _service(context).cancel(tenant.id, run_id)
    return Response(status_code=204)


@router.delete("/runs/{run_id}/", status_code=204)
def delete_run(run_id: str, tenant: CurrentTenant, context: Context) -> Response:
    """Delete a run, its files, ZIP and evaluations (a running one is canceled first)."""
    _service(context).delete(tenant.id, run_id)
    return Response(status_code=204)


@router.get(
    "/runs/{run_id}/files/download/",
    response_model=ZipDownloadPublic,
    responses={202: {"model": ZipDownloadPublic, "description": "The ZIP is being built: ask again."}},
)
def download_all_files(
    run_id: str, request: Request, tenant: CurrentTenant, context: Context
) -> JSONResponse:
    """The ZIP of every file: 202 ``{download_url: null}`` while it builds, then 200 with the link."""
    return zip_answer(request, context, _service(context).zip(tenant.id, run_id), ZipDownloadPublic)


@router.get("/runs/{run_id}/files/{file_id}/download/", response_model=FileDownloadPublic)
def download_file(
    run_id: str, file_id: str, request: Request, tenant: CurrentTenant, context: Context
) -> dict[str, str]:
    """One generated file: ``{download_url, filename, content_type}``."""
    target = _service(context).file(tenant.id, run_id, file_id)
    return download_body(request, context, target)
