"""A generation run as the Dataframer API shows it, read from the run and its job.

Status is the job's (`public_status`); ``samples_completed`` is the accepted samples (live from the
heartbeat while it runs, the delivered count once it ended), ``samples_failed`` the rejected candidates,
``total_cost`` the model spend. ``generated_files`` is filled once the run SUCCEEDED. Beyond the SDK's
fields the object carries ``error`` (why it failed) and ``summary`` (candidates, pass rate, rejections
per gate, usage) once the run ended.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from datamill.services.errors import NotFoundError
from datamill.services.generation.common import iso
from datamill.store.generation_models import RUN_STATUS, GenerationRun, SeedDataset, Spec, public_status
from datamill.store.generation_runs import files_of_run, get_generation_run
from datamill.store.jobs import get_job
from datamill.store.models import Run


def tenant_run(session: Session, tenant_id: str, run_id: str) -> GenerationRun:
    """The tenant's run `run_id`; NotFoundError for an unknown (or another tenant's) id."""
    run = get_generation_run(session, tenant_id, run_id)
    if run is None:
        raise NotFoundError("run", run_id)
    return run


def run_status(session: Session, run: GenerationRun) -> str:
    job = get_job(session, run.tenant_id, run.job_id)
    return public_status(job.status if job else None, RUN_STATUS)


def _progress(job: Run | None) -> dict[str, Any]:
    if job is None:
        return {"samples_completed": 0, "samples_failed": 0, "total_cost": 0.0}
    return {
        "samples_completed": max(job.processed_rows or 0, job.rows_out or 0),
        "samples_failed": job.rows_rejected or 0,
        "total_cost": round(float(job.cost_usd or 0.0), 8),
    }


def _error(job: Run | None) -> str | None:
    if job is None:
        return "the run's job is gone"
    if job.status != "failed":
        return None
    return str((job.error_data or {}).get("message") or "the run failed")


def run_list_item(session: Session, run: GenerationRun) -> dict[str, Any]:
    """The run without ``generated_files`` and ``runtime_params`` (the list's items)."""
    job = get_job(session, run.tenant_id, run.job_id)
    spec = session.get(Spec, run.spec_id)
    dataset = session.get(SeedDataset, spec.dataset_id) if spec and spec.dataset_id else None
    finished = job.finished_at if job is not None and job.status not in ("queued", "running") else None
    return {
        "id": run.id,
        "status": public_status(job.status if job else None, RUN_STATUS),
        "spec_id": run.spec_id,
        "spec_name": spec.name if spec else None,
        "spec_version": run.spec_version,
        "dataset_id": spec.dataset_id if spec else None,
        "dataset_name": dataset.name if dataset else None,
        "dataset_type": spec.dataset_type if spec else "MULTI_FILE",
        **_progress(job),
        "created_at": iso(run.created_at),
        "completed_at": iso(run.completed_at or finished),
        "created_by_email": run.created_by_email,
        "error": _error(job),
    }


def run_wire(session: Session, run: GenerationRun) -> dict[str, Any]:
    """The full run object of create and retrieve."""
    item = run_list_item(session, run)
    if item["status"] in ("SUCCEEDED", "FAILED", "CANCELED"):
        # The job's end and the run's summary commit together, but the run was read before the job: a job
        # that ended in between would show its status with the summary of before.
        session.refresh(run)
    files = files_of_run(session, run.id) if item["status"] == "SUCCEEDED" else []
    return item | {
        "generated_files": [
            {"id": f.id, "path": f.path, "file_type": f.file_type, "size_bytes": f.size_bytes} for f in files
        ],
        "runtime_params": dict(run.runtime_params),
        "summary": run.summary,
    }
