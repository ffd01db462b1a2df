"""Downloading a dataset's output in every format the API serves, and publishing it to a target.

The publish form offers only the targets the server is set up for (`PublishService.configured_targets`), and
says how to set one up when there is none. A publish that fails (a path outside the allowed roots, a
dataset without output, the destination refusing the files) answers the same page with the form still
filled in and the reason beside it, with the status of the error.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import FileResponse, HTMLResponse
from starlette.background import BackgroundTask

from datamill.core.errors import Issue, ValidationError
from datamill.server.errors import describe
from datamill.server.web.deps import PostSession, SessionDep, Web, WebDep
from datamill.services.datasets.downloads import FORMATS
from datamill.services.datasets.publish.service import FILE_FORMATS, TargetNotImplemented
from datamill.services.datasets.publish.targets import PublishUpstreamError
from datamill.services.errors import ServiceError

router = APIRouter()

#: Formats a dataset's output downloads in (parquet comes as a tar.gz of shards).
DOWNLOAD_FORMATS = FORMATS
#: How the form names each target.
TARGET_LABELS = {"local": "a path on the server", "fsspec": "an fsspec URL", "huggingface": "Hugging Face"}


@dataclass(frozen=True)
class PublishForm:
    """What the publish form shows: the configured targets, what was sent, and why it failed."""

    targets: Sequence[tuple[str, str]]
    placeholder: str
    formats: Sequence[str] = FILE_FORMATS
    values: dict[str, str] = field(default_factory=dict)
    error: str | None = None
    issues: Sequence[Issue] = ()


def publish_form(
    web: Web, values: dict[str, str] | None = None, error: str | None = None, issues: Sequence[Issue] = ()
) -> PublishForm:
    """The publish form of a dataset's pages, filled with `values` and showing `error` when given."""
    targets = web.context.publish.configured_targets()
    hints = [f"{root.rstrip('/')}/name" for root in web.context.publish.roots[:1]]
    if "huggingface" in targets:
        hints.append("org/name")
    return PublishForm(
        targets=[(t, TARGET_LABELS[t]) for t in targets],
        placeholder=" or ".join(hints),
        values=values or {},
        error=error,
        issues=issues,
    )


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
    except (ValidationError, ServiceError) as exc:
        answer = describe(request, exc)
        status = 501 if isinstance(exc, TargetNotImplemented) else answer.status
        status = 502 if isinstance(exc, PublishUpstreamError) else status
        sent = {"target": target, "location": location, "file_format": file_format}
        form = publish_form(web, sent, answer.message, answer.issues)
        return web.page(request, "published.html", session, status, dataset=view, done=None, publish=form)
    return web.page(request, "published.html", session, dataset=view, done=done, publish=publish_form(web))
