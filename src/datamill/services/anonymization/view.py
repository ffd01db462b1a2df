"""An anonymization run as its readers see it (`AnonymizationRunSummary`, `AnonymizationRunDetail`).

Status is the job's. ``results`` (samples processed, entities masked by type, the entities found, and why
the run failed) is None until the run ended; ``files`` is filled once it SUCCEEDED. The detail also shows
the ``mask_config`` and ``threshold`` used, and how long the run took.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from datamill.services.errors import NotFoundError
from datamill.store.anonymization_models import ANONYMIZATION_STATUS, AnonymizationRun
from datamill.store.anonymization_runs import files_of_anonymization, get_anonymization_run
from datamill.store.generation_models import public_status
from datamill.store.jobs import get_job
from datamill.store.models import Run, naive_utc


@dataclass(frozen=True, kw_only=True)
class AnonymizedFile:
    """One file of the anonymized dataset (a PDF's text is ``<name>.pdf.txt``)."""

    id: str
    path: str
    content_type: str
    size_bytes: int


@dataclass(frozen=True, kw_only=True)
class AnonymizationResults:
    """What an ended run found: samples processed, entities masked by type, each entity found.

    `entities_truncated` and `llm_entities_dropped` are None when the job did not report them.
    """

    samples_processed: int
    entity_summary: Mapping[str, int]
    entities_found: tuple[Mapping[str, Any], ...]
    error: str | None = None
    entities_truncated: bool | None = None
    llm_entities_dropped: int | None = None


@dataclass(frozen=True, kw_only=True)
class AnonymizationRunSummary:
    """A run as listed: the dataset it masks, how it detects, which PII types."""

    id: str
    status: str
    dataset_id: str
    dataset_name: str
    detection_method: str
    llm_model_name: str | None
    pii_types: tuple[str, ...]
    created_at: dt.datetime
    completed_at: dt.datetime | None
    created_by_email: str


@dataclass(frozen=True, kw_only=True)
class AnonymizationRunDetail(AnonymizationRunSummary):
    """A run with its options, duration in seconds (once ended), results and files."""

    mask_config: Mapping[str, str]
    threshold: float
    duration_seconds: int | None
    results: AnonymizationResults | None
    files: tuple[AnonymizedFile, ...]


def tenant_anonymization(session: Session, tenant_id: str, run_id: str) -> AnonymizationRun:
    """The tenant's live run `run_id`; NotFoundError for an unknown, deleted or another tenant's id."""
    run = get_anonymization_run(session, tenant_id, run_id)
    if run is None:
        raise NotFoundError("anonymization run", run_id)
    return run


def anonymization_status(session: Session, run: AnonymizationRun) -> str:
    job = get_job(session, run.tenant_id, run.job_id)
    return public_status(job.status if job else None, ANONYMIZATION_STATUS)


def run_summary(session: Session, run: AnonymizationRun) -> AnonymizationRunSummary:
    """The list item: the run without its files, results and options."""
    return AnonymizationRunSummary(
        id=run.id,
        status=anonymization_status(session, run),
        dataset_id=run.dataset_id,
        dataset_name=run.dataset_name,
        detection_method=run.detection_method,
        llm_model_name=run.llm_model_name,
        pii_types=tuple(run.request.get("pii_types") or ()),
        created_at=run.created_at,
        completed_at=run.completed_at,
        created_by_email=run.created_by_email,
    )


def run_detail(session: Session, run: AnonymizationRun) -> AnonymizationRunDetail:
    """The run (see the module docstring)."""
    job = get_job(session, run.tenant_id, run.job_id)
    summary = run_summary(session, run)
    if summary.status in ("SUCCEEDED", "FAILED", "CANCELED"):
        # The job's end and the run's results commit together, but the run was read before the job: a job
        # that ended in between would show its status with the results of before.
        session.refresh(run)
    files = files_of_anonymization(session, run.id) if summary.status == "SUCCEEDED" else []
    return AnonymizationRunDetail(
        **vars(summary),
        mask_config=dict(run.request.get("mask_config") or {}),
        threshold=run.threshold,
        duration_seconds=_duration(run.created_at, run.completed_at),
        results=_results(run, job, summary.status),
        files=tuple(
            AnonymizedFile(id=f.id, path=f.path, content_type=f.content_type, size_bytes=f.size_bytes)
            for f in files
        ),
    )


def _duration(start: dt.datetime, end: dt.datetime | None) -> int | None:
    if end is None:
        return None
    return max(0, round((naive_utc(end) - naive_utc(start)).total_seconds()))


def _results(run: AnonymizationRun, job: Run | None, status: str) -> AnonymizationResults | None:
    if status in ("PENDING", "PROCESSING"):
        return None
    results = dict(run.results or {})
    error = None
    if status == "FAILED":
        error = str(((job.error_data if job else None) or {}).get("message") or "the run failed")
    return AnonymizationResults(
        samples_processed=results.get("samples_processed", 0),
        entity_summary=results.get("entity_summary", {}),
        entities_found=tuple(results.get("entities_found", ())),
        error=error,
        entities_truncated=results.get("entities_truncated"),
        llm_entities_dropped=results.get("llm_entities_dropped"),
    )
