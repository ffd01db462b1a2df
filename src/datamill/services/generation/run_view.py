"""A generation run as its readers see it (`GenerationRunSummary`, `GenerationRunDetail`), from its job.

Status is the job's (`public_status`); ``samples_completed`` is the accepted samples (live from the
heartbeat while it runs, the delivered count once it ended), ``samples_failed`` the rejected candidates,
``total_cost`` the model spend. ``generated_files`` is filled once the run SUCCEEDED; ``error`` says why
it failed and ``summary`` (candidates, pass rate, rejections per gate, usage) is there once it ended.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from datamill.services.errors import NotFoundError
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


@dataclass(frozen=True, kw_only=True)
class GeneratedFileView:
    """One file a SUCCEEDED run wrote (a sample, its metadata, the summary)."""

    id: str
    path: str
    file_type: str
    size_bytes: int


@dataclass(frozen=True, kw_only=True)
class GenerationRunSummary:
    """A run as listed: its status and progress, the spec (and seeds) it generates from, its cost in USD."""

    id: str
    status: str
    spec_id: str
    spec_name: str | None
    spec_version: int
    dataset_id: str | None
    dataset_name: str | None
    dataset_type: str
    samples_completed: int
    samples_failed: int
    total_cost: float
    created_at: dt.datetime
    completed_at: dt.datetime | None
    created_by_email: str
    error: str | None


@dataclass(frozen=True, kw_only=True)
class GenerationRunDetail(GenerationRunSummary):
    """A run with its files (once SUCCEEDED), resolved parameters and, once it ended, its summary."""

    generated_files: tuple[GeneratedFileView, ...]
    runtime_params: Mapping[str, Any]
    summary: Mapping[str, Any] | None


def run_error(job: Run | None) -> str | None:
    """Why a run failed: its job's message (a job that is gone fails the run too); None unless FAILED."""
    if job is None:
        return "the run's job is gone"
    if job.status != "failed":
        return None
    return str((job.error_data or {}).get("message") or "the run failed")


def ended_at(job: Run | None) -> dt.datetime | None:
    """When the run's job ended; None while it is queued or running."""
    return job.finished_at if job is not None and job.status not in ("queued", "running") else None


def run_summary(session: Session, run: GenerationRun) -> GenerationRunSummary:
    """The run without its files and parameters (the list's items)."""
    job = get_job(session, run.tenant_id, run.job_id)
    spec = session.get(Spec, run.spec_id)
    dataset = session.get(SeedDataset, spec.dataset_id) if spec and spec.dataset_id else None
    return GenerationRunSummary(
        id=run.id,
        status=public_status(job.status if job else None, RUN_STATUS),
        spec_id=run.spec_id,
        spec_name=spec.name if spec else None,
        spec_version=run.spec_version,
        dataset_id=spec.dataset_id if spec else None,
        dataset_name=dataset.name if dataset else None,
        dataset_type=spec.dataset_type if spec else "MULTI_FILE",
        samples_completed=max(job.processed_rows or 0, job.rows_out or 0) if job else 0,
        samples_failed=(job.rows_rejected or 0) if job else 0,
        total_cost=round(float(job.cost_usd or 0.0), 8) if job else 0.0,
        created_at=run.created_at,
        completed_at=run.completed_at or ended_at(job),
        created_by_email=run.created_by_email,
        error=run_error(job),
    )


def run_detail(session: Session, run: GenerationRun) -> GenerationRunDetail:
    """The full run of create and retrieve."""
    summary = run_summary(session, run)
    if summary.status in ("SUCCEEDED", "FAILED", "CANCELED"):
        # The job's end and the run's summary commit together, but the run was read before the job: a job
        # that ended in between would show its status with the summary of before.
        session.refresh(run)
    files = files_of_run(session, run.id) if summary.status == "SUCCEEDED" else []
    return GenerationRunDetail(
        **vars(summary),
        generated_files=tuple(
            GeneratedFileView(id=f.id, path=f.path, file_type=f.file_type, size_bytes=f.size_bytes)
            for f in files
        ),
        runtime_params=dict(run.runtime_params),
        summary=run.summary,
    )
