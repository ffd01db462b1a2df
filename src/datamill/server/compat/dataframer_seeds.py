"""Seed-dataset routes of the Dataframer-compatible API (``/api/dataframer/seed-datasets/...``).

The two creates are ``multipart/form-data``: ``dataset_type``, ``name``, ``description``, repeated
``folder_names[]`` and ``files[]`` (``files`` and ``folder_names`` are read too), or ``name``,
``description`` and ``zip_file``. A body over `MAX_BODY` answers 413 before it is read, and one without a
Content-Length 411. The rules and the storing are `datamill.services.generation.seeds`'; the routes translate.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile

from datamill.core.errors import ValidationError
from datamill.server.auth import Context, CurrentTenant
from datamill.server.compat.dataframer_schemas import (
    FileDownloadPublic,
    SeedDatasetItemPublic,
    SeedDatasetPublic,
    SeedFilePublic,
)
from datamill.server.downloads_signed import download_body
from datamill.services.errors import PayloadTooLargeError
from datamill.services.generation.common import CodedError, iso
from datamill.services.generation.seed_rules import MAX_FILES, MAX_TOTAL_BYTES, MB, IncomingFile
from datamill.services.generation.seeds import SeedDatasetService, SeedDatasetView

#: The largest request body read: 50 MB of files plus room for the multipart framing.
MAX_BODY = MAX_TOTAL_BYTES + 2 * MB

router = APIRouter(prefix="/api/dataframer/seed-datasets", tags=["dataframer"])


class LengthRequiredError(CodedError):
    """A multipart upload without a Content-Length (411)."""

    status = 411


def _item_fields(view: SeedDatasetView) -> dict[str, Any]:
    row = view.row
    return {
        "id": row.id,
        "name": row.name,
        "description": row.description,
        "dataset_type": row.dataset_type,
        "file_count": row.file_count,
        "folder_count": row.folder_count,
        "created_at": iso(row.created_at),
        "created_by_email": row.created_by_email,
    }


def seed_dataset_public(view: SeedDatasetView) -> SeedDatasetPublic:
    """The dataset object of create and retrieve: the list item with its files and sample count."""
    files = [
        SeedFilePublic(id=f.id, path=f.path, file_type=f.file_type, size_bytes=f.size_bytes, sha256=f.sha256)
        for f in view.files or []
    ]
    return SeedDatasetPublic(**_item_fields(view), sample_count=view.row.sample_count, files=files)


def _service(context: Context) -> SeedDatasetService:
    return SeedDatasetService(context.store, context.blobs)


async def _form(request: Request) -> FormData:
    length = request.headers.get("content-length")
    if length is None or not (length.isascii() and length.isdigit()):
        raise LengthRequiredError("send the upload with a Content-Length header", "length_required")
    if int(length) > MAX_BODY:
        raise PayloadTooLargeError(MAX_BODY)
    if not request.headers.get("content-type", "").lower().startswith("multipart/form-data"):
        raise ValidationError.of("body", "send the dataset as multipart/form-data")
    return await request.form(max_files=MAX_FILES + 1, max_fields=MAX_FILES + 10)


def _text(form: FormData, name: str) -> str | None:
    value = form.get(name)
    if isinstance(value, UploadFile):
        raise ValidationError.of(name, f"{name} must be a text field, not a file")
    return value


def _texts(form: FormData, name: str) -> list[str] | None:
    values = form.getlist(f"{name}[]") or form.getlist(name)
    for index, value in enumerate(values):
        if isinstance(value, UploadFile):
            raise ValidationError.of(f"{name}[{index}]", "must be a text field, not a file")
    return [str(value) for value in values] or None


def _size(upload: UploadFile) -> int:
    upload.file.seek(0, 2)
    size = upload.file.tell()
    upload.file.seek(0)
    return size


def _files(form: FormData) -> list[IncomingFile]:
    values = form.getlist("files[]") or form.getlist("files")
    files: list[IncomingFile] = []
    for index, value in enumerate(values):
        if not isinstance(value, UploadFile):
            raise ValidationError.of(f"files[{index}]", "must be a file upload")
        files.append(IncomingFile(value.filename or "upload", value.file, _size(value), value.content_type))
    return files


@router.post("/create/", status_code=201, response_model=SeedDatasetPublic)
async def create_with_files(request: Request, context: Context, tenant: CurrentTenant) -> SeedDatasetPublic:
    """Create a dataset from uploaded files."""
    form = await _form(request)
    try:
        view = await run_in_threadpool(
            _service(context).create,
            tenant,
            name=_text(form, "name"),
            description=_text(form, "description"),
            dataset_type=_text(form, "dataset_type"),
            files=_files(form),
            folder_names=_texts(form, "folder_names"),
        )
    finally:
        await form.close()
    return seed_dataset_public(view)


@router.post("/create-from-zip/", status_code=201, response_model=SeedDatasetPublic)
async def create_from_zip(request: Request, context: Context, tenant: CurrentTenant) -> SeedDatasetPublic:
    """Create a dataset from a ZIP archive; its type is read from the archive."""
    form = await _form(request)
    try:
        archive = form.get("zip_file")
        if archive is not None and not isinstance(archive, UploadFile):
            raise ValidationError.of("zip_file", "zip_file must be a file upload")
        view = await run_in_threadpool(
            _service(context).create_from_zip,
            tenant,
            name=_text(form, "name"),
            description=_text(form, "description"),
            archive=None if archive is None else archive.file,
        )
    finally:
        await form.close()
    return seed_dataset_public(view)


@router.get("/", response_model=list[SeedDatasetItemPublic])
def list_datasets(context: Context, tenant: CurrentTenant) -> list[SeedDatasetItemPublic]:
    """The tenant's datasets, newest first (a bare array)."""
    return [SeedDatasetItemPublic(**_item_fields(view)) for view in _service(context).list_datasets(tenant)]


@router.get("/{dataset_id}/", response_model=SeedDatasetPublic)
def retrieve_dataset(dataset_id: str, context: Context, tenant: CurrentTenant) -> SeedDatasetPublic:
    """One dataset with its files."""
    return seed_dataset_public(_service(context).get(tenant, dataset_id))


@router.delete("/{dataset_id}/", status_code=204)
def delete_dataset(dataset_id: str, context: Context, tenant: CurrentTenant) -> Response:
    """Delete a dataset and its files (refused while a spec uses it)."""
    _service(context).delete(tenant, dataset_id)
    return Response(status_code=204)


@router.get("/{dataset_id}/files/{file_id}/", response_model=FileDownloadPublic)
def download_file(
    dataset_id: str, file_id: str, request: Request, context: Context, tenant: CurrentTenant
) -> dict[str, str]:
    """A signed link to one file: ``{download_url, filename, content_type}``."""
    return download_body(request, context, _service(context).file_download(tenant, dataset_id, file_id))
