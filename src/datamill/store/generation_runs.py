"""Repository of generation runs, the files they wrote, and what hangs off them; scoped by tenant."""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from datamill.store.generation_models import GeneratedFile, GenerationEvaluation, GenerationRun


def get_generation_run(session: Session, tenant_id: str, run_id: str) -> GenerationRun | None:
    """The tenant's run `run_id`, or None (another tenant's id reads as absent)."""
    return session.scalar(
        select(GenerationRun).where(GenerationRun.id == run_id, GenerationRun.tenant_id == tenant_id)
    )


def get_generation_run_any_tenant(session: Session, run_id: str) -> GenerationRun | None:
    """For a job's executor, which has only the id; never for answering a tenant's request."""
    return session.get(GenerationRun, run_id)


def list_generation_runs(session: Session, tenant_id: str) -> list[GenerationRun]:
    """The tenant's runs, newest first."""
    query = (
        select(GenerationRun)
        .where(GenerationRun.tenant_id == tenant_id)
        .order_by(GenerationRun.created_at.desc(), GenerationRun.id.desc())
    )
    return list(session.scalars(query))


def add_generation_run(session: Session, run: GenerationRun) -> GenerationRun:
    session.add(run)
    session.flush()
    return run


def files_of_run(session: Session, run_id: str) -> list[GeneratedFile]:
    """The files a run wrote, in order."""
    query = select(GeneratedFile).where(GeneratedFile.run_id == run_id).order_by(GeneratedFile.position)
    return list(session.scalars(query))


def get_generated_file(session: Session, run_id: str, file_id: str) -> GeneratedFile | None:
    query = select(GeneratedFile).where(GeneratedFile.run_id == run_id, GeneratedFile.id == file_id)
    return session.scalar(query)


def evaluations_of_run(session: Session, run_id: str) -> list[GenerationEvaluation]:
    """The run's evaluations, oldest first."""
    query = (
        select(GenerationEvaluation)
        .where(GenerationEvaluation.run_id == run_id)
        .order_by(GenerationEvaluation.created_at, GenerationEvaluation.id)
    )
    return list(session.scalars(query))


def delete_generation_run(session: Session, run: GenerationRun) -> list[str]:
    """Delete the run, its file rows and its evaluations; returns the blob keys the caller must delete."""
    keys = [f.blob_key for f in files_of_run(session, run.id)]
    session.execute(delete(GeneratedFile).where(GeneratedFile.run_id == run.id))
    session.execute(delete(GenerationEvaluation).where(GenerationEvaluation.run_id == run.id))
    session.delete(run)
    session.flush()
    return keys


def generated_blob_key(tenant_id: str, run_id: str, path: str) -> str:
    """Where a run's generated file `path` is kept in the blob store."""
    return f"generated/{tenant_id}/{run_id}/{path}"


def zip_blob_key(tenant_id: str, run_id: str, zip_job_id: str) -> str:
    """Where the ZIP of a run's files that job `zip_job_id` built is kept."""
    return f"generated/{tenant_id}/{run_id}/_zip/{zip_job_id}.zip"
