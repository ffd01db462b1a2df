"""Dataset pages: the table of datasets with the drop zone, one dataset with a paged preview, and upload.

Two or more datasets of the list combine into a new one (``/datasets/combine``, the combine service's
checks and messages).

Upload is the API's signed-link flow driven by the page's script: ``POST /datasets/upload`` creates the
pending dataset and answers a same-origin upload link, the browser PUTs the file there (with a progress
bar), then ``POST /datasets/{id}/upload/complete`` checks the size and starts reading the file.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Request
from fastapi.responses import HTMLResponse

from datamill.core.errors import ValidationError
from datamill.server.uploads import UPLOAD_PATH, upload_query
from datamill.server.web.deps import PostSession, SessionDep, WebDep
from datamill.server.web.downloads import publish_form
from datamill.server.web.preview import read_preview
from datamill.server.web.runs import run_summary
from datamill.services.datasets.listing import parse_list_query
from datamill.services.datasets.upload_checks import parse_file_source

router = APIRouter()

PAGE_ROWS = 20


@router.get("/datasets", response_class=HTMLResponse)
def list_page(
    request: Request, web: WebDep, session: SessionDep, cursor: str | None = None, q: str | None = None
) -> HTMLResponse:
    query = parse_list_query({"limit": "50", "cursor": cursor, "q": q})
    page = web.context.datasets.list(session.tenant.id, query)
    return web.page(
        request,
        "datasets.html",
        session,
        datasets=page.items,
        next_cursor=page.next_cursor,
        q=q or "",
        max_bytes=web.context.settings.max_upload_bytes,
    )


@router.post("/datasets/upload", status_code=201)
def start_upload(
    web: WebDep, session: PostSession, body: Annotated[dict[str, Any], Body()]
) -> dict[str, Any]:
    """A pending dataset for the file the page is about to send, and where to PUT it."""
    source = parse_file_source({"name": body.get("name"), "file_format": body.get("file_format")})
    size = body.get("size_bytes")
    limit = web.context.settings.max_upload_bytes
    if isinstance(size, int) and size > limit:
        raise ValidationError.of("size_bytes", f"the file is larger than the upload limit of {limit} bytes")
    created = web.context.uploads.create_dataset(session.tenant.id, source)
    ticket = created.ticket
    query = upload_query(web.context.signer, ticket)
    return {"dataset_id": created.dataset_id, "upload_url": f"{UPLOAD_PATH}/{ticket.upload_id}?{query}"}


@router.post("/datasets/{dataset_id}/upload/complete")
def complete_upload(
    dataset_id: str, web: WebDep, session: PostSession, body: Annotated[dict[str, Any], Body()]
) -> dict[str, Any]:
    size = body.get("size_bytes")
    if not isinstance(size, int | float) or isinstance(size, bool):
        raise ValidationError.of("size_bytes", "required: the byte count of the uploaded file")
    done = web.context.uploads.complete_by_id(session.tenant.id, dataset_id, size)
    return {"dataset_id": done.dataset_id, "status": done.status, "url": f"/datasets/{done.dataset_id}"}


@router.get("/datasets/{dataset_id}", response_class=HTMLResponse)
def dataset_page(
    request: Request, dataset_id: str, web: WebDep, session: SessionDep, offset: int = 0
) -> HTMLResponse:
    view = web.context.datasets.get(session.tenant.id, dataset_id)
    offset = max(0, offset)
    preview = read_preview(web.context, view.id, offset, PAGE_ROWS) if view.columns else None
    return web.page(
        request,
        "dataset.html",
        session,
        dataset=view,
        preview=preview,
        page_rows=PAGE_ROWS,
        run=run_summary(web.context, session.tenant.id, view.run_id) if view.run_id else None,
        publish=publish_form(web),
        custom_evals=web.context.custom_evals.list_for_dataset(session.tenant.id, view.id)
        if view.row_count is not None
        else [],
    )


@router.post("/datasets/combine", status_code=201)
def combine(web: WebDep, session: PostSession, body: Annotated[dict[str, Any], Body()]) -> dict[str, Any]:
    """Merge the chosen datasets into a new one as ``POST /api/v1/datasets/combine`` does; where it is."""
    ids, name = body.get("dataset_ids") or [], body.get("name")
    if not isinstance(ids, list) or len(ids) < 2 or not all(isinstance(i, str) for i in ids):
        raise ValidationError.of("dataset_ids", "choose two or more datasets to combine")
    if not isinstance(name, str) or not name.strip():
        raise ValidationError.of("name", "required: the name of the combined dataset")
    made = web.context.combine.create(session.tenant.id, ids, name, None)
    return {"dataset_id": made, "url": f"/datasets/{made}"}


@router.post("/datasets/{dataset_id}/delete")
def delete_dataset(dataset_id: str, web: WebDep, session: PostSession) -> dict[str, Any]:
    """Delete the dataset as ``DELETE /api/v1/datasets/{id}`` does (409 while a run uses it); where to go."""
    web.context.datasets.delete(session.tenant.id, dataset_id)
    return {"deleted": dataset_id, "url": "/datasets"}


@router.get("/datasets/{dataset_id}/status.json")
def dataset_status(dataset_id: str, web: WebDep, session: SessionDep) -> dict[str, Any]:
    view = web.context.datasets.get(session.tenant.id, dataset_id)
    return {"dataset_id": view.id, "status": view.status, "row_count": view.row_count}
