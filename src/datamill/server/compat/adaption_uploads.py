"""Adaption API upload routes (Adaption API): create with a file source, initiate and complete.

Handlers only translate: wire models in, `datamill.services.datasets.uploads.UploadService` calls, wire
models out. They
are plain ``def`` functions because the services use blocking database calls; FastAPI runs them on its
thread pool. The static ``/datasets/upload/*`` paths are registered before ``/datasets/{dataset_id}``.
"""

from __future__ import annotations

from fastapi import APIRouter, Request

from datamill.server.auth import Context, CurrentTenant
from datamill.server.compat.adaption_models import (
    BatchUploadPublic,
    DatasetCreate,
    DatasetCreatePublic,
    ErrorPublic,
    UploadCompleteBatchCreate,
    UploadCompleteByIdCreate,
    UploadCompleteCreate,
    UploadCompletePublic,
    UploadInitiateBatchCreate,
    UploadInitiateBatchPublic,
    UploadInitiateCreate,
    UploadInitiatePublic,
    UploadInstructionsPublic,
)
from datamill.server.uploads import upload_url
from datamill.services.datasets.upload_checks import parse_file_source, parse_url_source
from datamill.services.datasets.uploads import BatchFile

_ERRORS: dict[int | str, dict[str, object]] = {code: {"model": ErrorPublic} for code in (400, 401, 404)}

router = APIRouter(tags=["datasets: upload"], responses=_ERRORS)


@router.post("/datasets", status_code=201, response_model=DatasetCreatePublic, tags=["datasets"])
def create_dataset(
    body: DatasetCreate, request: Request, tenant: CurrentTenant, context: Context
) -> DatasetCreatePublic:
    """Create a dataset from a file source; PUT the file to ``upload_instructions.url``, then complete it.

    With ``source.url`` the dataset is imported instead: it is created ``pending`` with no upload
    instructions, its file is fetched in the background, then read as an upload; a fetch that is refused or
    fails marks it ``failed`` with the reason in ``error_data``.
    """
    fields = body.source.model_dump(exclude_none=True)
    if fields.get("url"):
        dataset_id, status = context.imports.service.create(
            tenant.id, parse_url_source(fields, sheets_base_url=context.settings.google_sheets_url)
        )
        context.imports.submit(dataset_id)
        return DatasetCreatePublic(dataset_id=dataset_id, status=status, upload_instructions=None)
    source = parse_file_source(fields)
    created = context.uploads.create_dataset(tenant.id, source)
    instructions = UploadInstructionsPublic(
        url=upload_url(request, context, created.ticket),
        s3_key=created.ticket.s3_key,
        expires_at=created.ticket.expires_at,
    )
    return DatasetCreatePublic(
        dataset_id=created.dataset_id, status=created.status, upload_instructions=instructions
    )


@router.post("/datasets/upload/initiate", status_code=201, response_model=UploadInitiatePublic)
def initiate_upload(
    body: UploadInitiateCreate, request: Request, tenant: CurrentTenant, context: Context
) -> UploadInitiatePublic:
    """Start a two-step upload: PUT the file to ``upload_url``, then upload/complete with ``s3_key``."""
    ticket = context.uploads.initiate(tenant.id, body.name, body.file_format)
    return UploadInitiatePublic(
        upload_url=upload_url(request, context, ticket), s3_key=ticket.s3_key, expires_at=ticket.expires_at
    )


@router.post("/datasets/upload/complete", response_model=UploadCompletePublic)
def complete_upload(
    body: UploadCompleteCreate, tenant: CurrentTenant, context: Context
) -> UploadCompletePublic:
    """Turn an initiated upload into a dataset and start reading it."""
    done = context.uploads.complete(tenant.id, body.s3_key, body.name, body.file_format, body.file_size_bytes)
    return UploadCompletePublic(dataset_id=done.dataset_id, status=done.status)


@router.post("/datasets/upload/initiate-batch", status_code=201, response_model=UploadInitiateBatchPublic)
def initiate_batch(
    body: UploadInitiateBatchCreate, request: Request, tenant: CurrentTenant, context: Context
) -> UploadInitiateBatchPublic:
    """Create a dataset of several files, all tabular or all documents; one upload URL per file."""
    files = [BatchFile(f.file_name, f.file_format, f.file_size_bytes) for f in body.files]
    dataset_id, tickets = context.uploads.initiate_batch(tenant.id, body.name, files)
    uploads = [
        BatchUploadPublic(file_name=t.file_name, upload_url=upload_url(request, context, t), s3_key=t.s3_key)
        for t in tickets
    ]
    return UploadInitiateBatchPublic(dataset_id=dataset_id, uploads=uploads)


@router.post("/datasets/upload/complete-batch", response_model=UploadCompletePublic)
def complete_batch(
    body: UploadCompleteBatchCreate, tenant: CurrentTenant, context: Context
) -> UploadCompletePublic:
    """Complete a batch: the listed files, in order, become the dataset's, and reading starts."""
    files = [BatchFile(f.file_name, f.file_format, f.file_size_bytes, f.s3_key) for f in body.files]
    done = context.uploads.complete_batch(tenant.id, body.dataset_id, files)
    return UploadCompletePublic(dataset_id=done.dataset_id, status=done.status)


@router.post("/datasets/{dataset_id}/upload/complete", response_model=UploadCompletePublic)
def complete_upload_by_id(
    dataset_id: str, body: UploadCompleteByIdCreate, tenant: CurrentTenant, context: Context
) -> UploadCompletePublic:
    """Check the uploaded file's size (and sha256) and start reading it.

    A mismatch answers 400 naming the field and changes nothing: the dataset stays ``pending`` and a
    corrected call still completes it.
    """
    done = context.uploads.complete_by_id(tenant.id, dataset_id, body.file_size_bytes, body.sha256)
    return UploadCompletePublic(dataset_id=done.dataset_id, status=done.status)
