"""Generate: launch a run of a spec, watch it live, cancel it, browse its samples, download files and ZIP.

Launch posts the API's run body (built by the page's script from the form) to the run service, so the
validation and messages are the API's. The run page polls ``progress.json`` (status, samples completed and
failed, cost) and reloads once the run ends; a SUCCEEDED run shows its samples a page at a time with their
drawn properties, its files, the ZIP (built by a job on the first request: ``zip.json`` answers
``ready: false`` until it is) and its evaluations.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Request
from fastapi.responses import HTMLResponse, StreamingResponse

from datamill.core.dataframer_models import EVALUATION_MODELS
from datamill.server.compat.dataframer_gen_wire import parse_run_create
from datamill.server.web import gen_services as services
from datamill.server.web.deps import PostSession, SessionDep, WebDep
from datamill.server.web.gen_samples import read_page, sample_files
from datamill.services.errors import ConflictError
from datamill.services.generation.common import CodedError
from datamill.services.generation.run_view import GenerationRunDetail

router = APIRouter()

PAGE_SAMPLES = 10
ENDED = ("SUCCEEDED", "FAILED", "CANCELED")


@router.post("/generate/runs", status_code=201)
def launch(web: WebDep, session: PostSession, body: Annotated[Any, Body()] = None) -> dict[str, Any]:
    """Start a run (the API's create body); where to watch it."""
    run = services.runs(web).create(session.tenant, parse_run_create(body))
    return {"id": run.id, "url": f"/generate/runs/{run.id}"}


def _progress(run: GenerationRunDetail) -> dict[str, Any]:
    return {
        "id": run.id,
        "status": run.status,
        "samples_completed": run.samples_completed,
        "samples_failed": run.samples_failed,
        "total_cost": run.total_cost,
        "error": run.error,
        "number_of_samples": run.runtime_params.get("number_of_samples"),
        "active": run.status not in ENDED,
        "cost": f"${float(run.total_cost or 0.0):.4f}",
    }


@router.get("/generate/runs/{run_id}", response_class=HTMLResponse)
def run_page(
    request: Request, run_id: str, web: WebDep, session: SessionDep, offset: int = 0
) -> HTMLResponse:
    tenant_id = session.tenant.id
    run = services.runs(web).get(tenant_id, run_id)
    files = run.generated_files
    offset = max(0, offset)
    return web.page(
        request,
        "gen_run.html",
        session,
        run=run,
        progress=_progress(run),
        samples=read_page(web, tenant_id, run_id, files, offset, PAGE_SAMPLES),
        sample_count=len(sample_files(files)),
        offset=offset,
        page_samples=PAGE_SAMPLES,
        evaluations=services.evaluations(web).list_for_run(tenant_id, run_id),
        evaluation_models=EVALUATION_MODELS,
    )


@router.get("/generate/runs/{run_id}/progress.json")
def progress(run_id: str, web: WebDep, session: SessionDep) -> dict[str, Any]:
    return _progress(services.runs(web).get(session.tenant.id, run_id)) | {"balance": session.tenant.credits}


@router.post("/generate/runs/{run_id}/cancel")
def cancel(run_id: str, web: WebDep, session: PostSession) -> dict[str, Any]:
    """Cancel a PENDING or PROCESSING run (400 ``not_cancelable`` once it ended)."""
    services.runs(web).cancel(session.tenant.id, run_id)
    return _progress(services.runs(web).get(session.tenant.id, run_id))


@router.post("/generate/runs/{run_id}/delete")
def delete_run(run_id: str, web: WebDep, session: PostSession) -> dict[str, Any]:
    """Delete an ended run with its files and evaluations; where to go (its spec)."""
    run = services.runs(web).get(session.tenant.id, run_id)
    if run.status not in ENDED:
        raise ConflictError(f"run {run_id!r} is {run.status}; cancel it before deleting it")
    services.runs(web).delete(session.tenant.id, run_id)
    return {"deleted": run_id, "url": f"/generate/specs/{run.spec_id}"}


@router.get("/generate/runs/{run_id}/files/{file_id}")
def run_file(run_id: str, file_id: str, web: WebDep, session: SessionDep) -> StreamingResponse:
    return services.stream(web, services.runs(web).file(session.tenant.id, run_id, file_id))


@router.get("/generate/runs/{run_id}/zip.json")
def zip_state(run_id: str, web: WebDep, session: SessionDep) -> dict[str, Any]:
    """Whether the ZIP is built (its first request queues the job); its link once it is."""
    state = services.runs(web).zip(session.tenant.id, run_id)
    url = f"/generate/runs/{run_id}/zip" if state.ready else None
    return {"ready": state.ready, "size_bytes": state.size_bytes, "url": url}


@router.get("/generate/runs/{run_id}/zip")
def zip_file(run_id: str, web: WebDep, session: SessionDep) -> StreamingResponse:
    state = services.runs(web).zip(session.tenant.id, run_id)
    if not state.ready or state.target is None:
        raise CodedError("the ZIP is still being built; try again in a moment", "zip_not_ready")
    return services.stream(web, state.target)
