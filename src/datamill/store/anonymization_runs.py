"""Repository of anonymization runs and their files; a tenant's reads skip soft-deleted runs."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from datamill.store.anonymization_models import AnonymizationRun, AnonymizedFile


def anonymized_blob_key(tenant_id: str, run_id: str, name: str) -> str:
    """Where an anonymized file's bytes are kept."""
    return f"anonymized/{tenant_id}/{run_id}/files/{name}"


def anonymized_zip_key(tenant_id: str, run_id: str, job_id: str) -> str:
    """Where the ZIP a job built of a run's files is kept."""
    return f"anonymized/{tenant_id}/{run_id}/_zip/{job_id}.zip"


def add_anonymization_run(session: Session, run: AnonymizationRun) -> AnonymizationRun:
    session.add(run)
    session.flush()
    return run


def get_anonymization_run(session: Session, tenant_id: str, run_id: str) -> AnonymizationRun | None:
    """The tenant's live run `run_id`, or None (another tenant's, or a deleted one, reads as absent)."""
    query = select(AnonymizationRun).where(
        AnonymizationRun.id == run_id,
        AnonymizationRun.tenant_id == tenant_id,
        AnonymizationRun.deleted_at.is_(None),
    )
    return session.scalar(query)


def get_anonymization_run_any_tenant(session: Session, run_id: str) -> AnonymizationRun | None:
    """For a job's executor, which has only the id; never for answering a tenant's request."""
    return session.get(AnonymizationRun, run_id)


def list_anonymization_runs(session: Session, tenant_id: str) -> list[AnonymizationRun]:
    """The tenant's live runs, newest first."""
    query = (
        select(AnonymizationRun)
        .where(AnonymizationRun.tenant_id == tenant_id, AnonymizationRun.deleted_at.is_(None))
        .order_by(AnonymizationRun.created_at.desc(), AnonymizationRun.id.desc())
    )
    return list(session.scalars(query))


def files_of_anonymization(session: Session, run_id: str) -> list[AnonymizedFile]:
    """The files a run wrote, in order."""
    query = select(AnonymizedFile).where(AnonymizedFile.run_id == run_id).order_by(AnonymizedFile.position)
    return list(session.scalars(query))


def get_anonymized_file(session: Session, run_id: str, file_id: str) -> AnonymizedFile | None:
    query = select(AnonymizedFile).where(AnonymizedFile.run_id == run_id, AnonymizedFile.id == file_id)
    return session.scalar(query)
