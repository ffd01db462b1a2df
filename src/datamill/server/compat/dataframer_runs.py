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
from datamill.server.downloads_signed import download_body, download_url
from datamill.services.generation.runs import RunService

router = APIRouter(prefix="/api/dataframer", tags=["dataframer: runs"])


def _service(context: Context) -> RunService:
    return RunService(context.store, context.blobs, context.runs.settings.price_table)


@router.post("/runs/", status_code=201)
def create_run(tenant: CurrentTenant, context: Context, body: JsonBody = None) -> JSONResponse:
    """Start a generation run of a SUCCEEDED spec; it reads PENDING until a worker takes it."""
    return JSONResponse(_service(context).create(tenant, body), status_code=201)


@router.get("/runs/")
def list_runs(tenant: CurrentTenant, context: Context) -> JSONResponse:
    """The tenant's runs, newest first (a bare array, without files and runtime parameters)."""
    return JSONResponse(_service(context).list(tenant.id))


@router.get("/runs/{run_id}/")
def retrieve_run(run_id: str, tenant: CurrentTenant, context: Context) -> JSONResponse:
    """One run with its progress, and its generated files once it SUCCEEDED."""
    return JSONResponse(_service(context).get(tenant.id, run_id))


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


@router.get("/runs/{run_id}/files/download/")
def download_all_files(
    run_id: str, request: Request, tenant: CurrentTenant, context: Context
) -> JSONResponse:
    """The ZIP of every file: 202 ``{download_url: null}`` while it builds, then 200 with the link."""
    state = _service(context).zip(tenant.id, run_id)
    if not state.ready or state.target is None:
        return JSONResponse(
            {"download_url": None, "size_bytes": None, "status": "generating"}, status_code=202
        )
    url = download_url(request, context, state.target)
    return JSONResponse({"download_url": url, "size_bytes": state.size_bytes, "status": "ready"})


@router.get("/runs/{run_id}/files/{file_id}/download/")
def download_file(
    run_id: str, file_id: str, request: Request, tenant: CurrentTenant, context: Context
) -> JSONResponse:
    """One generated file: ``{download_url, filename, content_type}``."""
    target = _service(context).file(tenant.id, run_id, file_id)
    return JSONResponse(download_body(request, context, target))
