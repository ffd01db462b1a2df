"""Dataframer-compatible anonymization routes: ``/api/dataframer/anonymization-runs/...``.

Create, list, retrieve, soft delete, one anonymized file's download and the ZIP of all files. Handlers
only translate between the wire and `datamill.services.anonymization.runs.AnonymizationService`: the body
is read by `dataframer_anonymization_request`, the typed runs are turned into the models of
`dataframer_anonymization_models` here. A file's
download answers ``{download_url, file_name, content_type}`` (``file_name``, as the SDK reads it here); the
ZIP answers 202 ``{download_url: null, status: "generating"}`` while its job builds it, then 200 with the
link and ``status: "ready"``.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from datamill.server.auth import Context, CurrentTenant, JsonBody
from datamill.server.compat.dataframer_anonymization_models import (
    AnonymizationRunItem,
    AnonymizationRunOut,
    AnonymizedFileOut,
    EntityFound,
    FileDownload,
    Results,
    ZipDownload,
)
from datamill.server.compat.dataframer_anonymization_request import parse_anonymization_create
from datamill.server.downloads_signed import download_url, zip_answer
from datamill.services.anonymization.runs import AnonymizationService
from datamill.services.anonymization.view import (
    AnonymizationResults,
    AnonymizationRunDetail,
    AnonymizationRunSummary,
)
from datamill.services.generation.common import iso

router = APIRouter(prefix="/api/dataframer", tags=["dataframer: anonymization"])


def _service(context: Context) -> AnonymizationService:
    return AnonymizationService(
        context.store, context.blobs, context.runs.settings.price_table, context.models.routing
    )


def _item_fields(run: AnonymizationRunSummary) -> dict[str, Any]:
    return {
        "id": run.id,
        "status": run.status,
        "dataset_id": run.dataset_id,
        "dataset_name": run.dataset_name,
        "detection_method": run.detection_method,
        "llm_model_name": run.llm_model_name,
        "pii_types": list(run.pii_types),
        "created_at": iso(run.created_at),
        "completed_at": iso(run.completed_at),
        "created_by_email": run.created_by_email,
    }


def _results(results: AnonymizationResults | None) -> Results | None:
    if results is None:
        return None
    return Results(
        samples_processed=results.samples_processed,
        entity_summary=dict(results.entity_summary),
        entities_found=[EntityFound.model_validate(entity) for entity in results.entities_found],
        error=results.error,
        entities_truncated=results.entities_truncated,
        llm_entities_dropped=results.llm_entities_dropped,
    )


def run_out(run: AnonymizationRunDetail) -> AnonymizationRunOut:
    """The run object: the list item with its options, results and files."""
    return AnonymizationRunOut(
        **_item_fields(run),
        mask_config=dict(run.mask_config),
        threshold=run.threshold,
        duration_seconds=run.duration_seconds,
        results=_results(run.results),
        anonymized_files=[
            AnonymizedFileOut(id=f.id, path=f.path, content_type=f.content_type, size_in_bytes=f.size_bytes)
            for f in run.files
        ],
    )


@router.post("/anonymization-runs/", status_code=201, response_model=AnonymizationRunOut)
def create_anonymization_run(
    tenant: CurrentTenant, context: Context, body: JsonBody = None
) -> AnonymizationRunOut:
    """Start masking the personal data of a seed dataset; it reads PENDING until a worker takes it."""
    return run_out(_service(context).create(tenant, parse_anonymization_create(body)))


@router.get("/anonymization-runs/", response_model=list[AnonymizationRunItem])
def list_anonymization_runs(tenant: CurrentTenant, context: Context) -> list[AnonymizationRunItem]:
    """The tenant's anonymization runs, newest first (a bare array; deleted runs are left out)."""
    return [AnonymizationRunItem(**_item_fields(run)) for run in _service(context).list(tenant.id)]


@router.get("/anonymization-runs/{run_id}/", response_model=AnonymizationRunOut)
def retrieve_anonymization_run(run_id: str, tenant: CurrentTenant, context: Context) -> AnonymizationRunOut:
    """One run with its results once it ended, and its files once it SUCCEEDED."""
    return run_out(_service(context).get(tenant.id, run_id))


@router.delete("/anonymization-runs/{run_id}/", status_code=204)
def delete_anonymization_run(run_id: str, tenant: CurrentTenant, context: Context) -> Response:
    """Soft delete: the run is hidden (404 from then on), stopped if it still works, its files deleted."""
    _service(context).delete(tenant.id, run_id)
    return Response(status_code=204)


@router.get(
    "/anonymization-runs/{run_id}/download/",
    response_model=ZipDownload,
    responses={202: {"model": ZipDownload, "description": "The ZIP is being built: ask again."}},
)
def download_all_anonymized_files(
    run_id: str, request: Request, tenant: CurrentTenant, context: Context
) -> JSONResponse:
    """The ZIP of every anonymized file: 202 ``generating`` while it builds, then 200 ``ready``."""
    return zip_answer(request, context, _service(context).zip(tenant.id, run_id), ZipDownload)


@router.get("/anonymization-runs/{run_id}/files/{file_id}/download/", response_model=FileDownload)
def download_anonymized_file(
    run_id: str, file_id: str, request: Request, tenant: CurrentTenant, context: Context
) -> Any:
    """One anonymized file: ``{download_url, file_name, content_type}``."""
    target = _service(context).file(tenant.id, run_id, file_id)
    return {
        "download_url": download_url(request, context, target),
        "file_name": target.filename,
        "content_type": target.content_type,
    }
