"""Generate: the overview (seed datasets, specs, runs) with the seed upload form, and one seed dataset.

Seeds are uploaded as ``multipart/form-data`` posted by the page's script: ``name``, ``description``,
``dataset_type`` and ``files`` (one or more, each file's folder taken from its relative path for a
``MULTI_FOLDER`` dataset), or ``zip_file`` (its type is read from the archive). The seed dataset service
checks every rule with the API's messages; an error names its field.
"""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, StreamingResponse
from starlette.datastructures import FormData, UploadFile

from datamill.core.dataframer_models import EVALUATION_MODELS, RUN_MODELS, SPEC_MODELS
from datamill.core.errors import ValidationError
from datamill.server.web import gen_services as services
from datamill.server.web.deps import PostSession, SessionDep, WebDep
from datamill.services.generation.seed_rules import DATASET_TYPES, MAX_FILES, IncomingFile

router = APIRouter()

#: The model lists the generate pages offer, the API's enums.
MODELS = {"spec": SPEC_MODELS, "run": RUN_MODELS, "evaluation": EVALUATION_MODELS}


@router.get("/generate", response_class=HTMLResponse)
def overview(request: Request, web: WebDep, session: SessionDep) -> HTMLResponse:
    tenant = session.tenant
    return web.page(
        request,
        "generate.html",
        session,
        seeds=services.seeds(web).list_datasets(tenant),
        specs=services.specs(web).list(tenant.id),
        runs=services.runs(web).list(tenant.id),
        dataset_types=DATASET_TYPES,
        spec_models=SPEC_MODELS,
    )


def _text(form: FormData, name: str) -> str | None:
    value = form.get(name)
    if isinstance(value, UploadFile):
        raise ValidationError.of(name, f"{name} must be a text field, not a file")
    return value.strip() or None if isinstance(value, str) else None


def _size(upload: UploadFile) -> int:
    upload.file.seek(0, 2)
    size = upload.file.tell()
    upload.file.seek(0)
    return size


def _files(form: FormData) -> tuple[list[IncomingFile], list[str]]:
    files, folders = [], []
    for index, value in enumerate(form.getlist("files")):
        if not isinstance(value, UploadFile):
            raise ValidationError.of(f"files[{index}]", "must be a file upload")
        if not value.filename:  # the browser sends an empty part when no file was chosen
            continue
        path = PurePosixPath(value.filename)
        files.append(IncomingFile(path.name, value.file, _size(value), value.content_type))
        folders.append(path.parent.name if len(path.parts) > 1 else "")
    return files, folders


@router.post("/generate/seeds", status_code=201)
async def create_seeds(request: Request, web: WebDep, session: PostSession) -> dict[str, Any]:
    """Create a seed dataset from the posted files or ZIP; where to see it."""
    form = await request.form(max_files=MAX_FILES + 1, max_fields=MAX_FILES + 10)
    try:
        archive = form.get("zip_file")
        service = services.seeds(web)
        name, description = _text(form, "name"), _text(form, "description")
        if isinstance(archive, UploadFile) and archive.filename:
            view = service.create_from_zip(
                session.tenant, name=name, description=description, archive=archive.file
            )
        else:
            files, folders = _files(form)
            if not files:
                raise ValidationError.of("files", "choose one or more seed files, or a .zip archive")
            kind = _text(form, "dataset_type")
            view = service.create(
                session.tenant,
                name=name,
                description=description,
                dataset_type=kind,
                files=files,
                folder_names=folders if kind == "MULTI_FOLDER" else None,
            )
    finally:
        await form.close()
    return {"id": view.row.id, "url": f"/generate/seeds/{view.row.id}"}


@router.get("/generate/seeds/{dataset_id}", response_class=HTMLResponse)
def seed_page(request: Request, dataset_id: str, web: WebDep, session: SessionDep) -> HTMLResponse:
    view = services.seeds(web).get(session.tenant, dataset_id)
    return web.page(
        request,
        "seed.html",
        session,
        seed=view.row,
        files=view.files or [],
        spec_models=SPEC_MODELS,
    )


@router.post("/generate/seeds/{dataset_id}/delete")
def delete_seeds(dataset_id: str, web: WebDep, session: PostSession) -> dict[str, Any]:
    """Delete the seed dataset and its files (refused while a spec uses it); where to go."""
    services.seeds(web).delete(session.tenant, dataset_id)
    return {"deleted": dataset_id, "url": "/generate"}


@router.get("/generate/seeds/{dataset_id}/files/{file_id}")
def seed_file(dataset_id: str, file_id: str, web: WebDep, session: SessionDep) -> StreamingResponse:
    target = services.seeds(web).file_download(session.tenant, dataset_id, file_id)
    return services.stream(web, target)
