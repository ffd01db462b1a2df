"""Downloading a dataset's output in every format the API serves, and publishing it to a target."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import FileResponse, HTMLResponse
from starlette.background import BackgroundTask

from datamill.server.web.deps import PostSession, SessionDep, WebDep
from datamill.services.datasets.downloads import FORMATS
from datamill.services.datasets.publish.service import TargetNotImplemented
from datamill.services.datasets.publish.targets import PublishUpstreamError

router = APIRouter()

#: Formats a dataset's output downloads in (parquet comes as a tar.gz of shards).
DOWNLOAD_FORMATS = FORMATS


@router.get("/datasets/{dataset_id}/download/{file_format}")
def download(dataset_id: str, file_format: str, web: WebDep, session: SessionDep) -> FileResponse:
    prepared = web.context.runs.downloads.prepare(session.tenant.id, dataset_id, file_format)
    return FileResponse(
        prepared.path,
        media_type=prepared.media_type,
        filename=prepared.filename,
        headers={"x-datamill-run-status": prepared.run_status},
        background=BackgroundTask(prepared.path.unlink, missing_ok=True),
    )


@router.post("/datasets/{dataset_id}/publish", response_class=HTMLResponse)
def publish(
    request: Request,
    dataset_id: str,
    web: WebDep,
    session: PostSession,
    target: Annotated[str, Form()] = "",
    location: Annotated[str, Form()] = "",
    file_format: Annotated[str, Form()] = "parquet",
) -> HTMLResponse:
    """Publish to ``local``/``fsspec`` (``location`` is the path) or ``huggingface`` (the repo id)."""
    view = web.context.datasets.get(session.tenant.id, dataset_id)
    key = "repo_id" if target == "huggingface" else "path"
    spec = {"file_format": file_format}
    if location.strip():
        spec[key] = location.strip()
    try:
        done = web.context.publish.publish(session.tenant.id, dataset_id, target, spec)
    except TargetNotImplemented as exc:
        return web.page(request, "published.html", session, 501, dataset=view, done=None, error=str(exc))
    except PublishUpstreamError as exc:
        return web.page(request, "published.html", session, 502, dataset=view, done=None, error=str(exc))
    return web.page(request, "published.html", session, dataset=view, done=done, error=None)
