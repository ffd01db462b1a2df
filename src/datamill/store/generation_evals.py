"""Repository of the evaluations of generation runs; every read a tenant makes is scoped by tenant."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from datamill.store.generation_models import GenerationEvaluation
from datamill.store.models import utcnow

#: Job status (``runs.status``) → the public status of an evaluation (it cannot be cancelled).
EVALUATION_STATUS = {
    "queued": "PENDING",
    "running": "PROCESSING",
    "succeeded": "SUCCEEDED",
    "failed": "FAILED",
}


def add_evaluation(session: Session, evaluation: GenerationEvaluation) -> GenerationEvaluation:
    session.add(evaluation)
    session.flush()
    return evaluation


def get_evaluation(session: Session, tenant_id: str, evaluation_id: str) -> GenerationEvaluation | None:
    """The tenant's evaluation, or None (another tenant's id reads as absent)."""
    query = select(GenerationEvaluation).where(
        GenerationEvaluation.id == evaluation_id, GenerationEvaluation.tenant_id == tenant_id
    )
    return session.scalar(query)


def get_evaluation_any_tenant(session: Session, evaluation_id: str) -> GenerationEvaluation | None:
    """For the evaluation job, which has only the id; never for answering a tenant's request."""
    return session.get(GenerationEvaluation, evaluation_id)


def list_evaluations(session: Session, tenant_id: str, run_id: str) -> list[GenerationEvaluation]:
    """The tenant's evaluations of a run, newest first."""
    query = (
        select(GenerationEvaluation)
        .where(GenerationEvaluation.tenant_id == tenant_id, GenerationEvaluation.run_id == run_id)
        .order_by(GenerationEvaluation.created_at.desc(), GenerationEvaluation.id.desc())
    )
    return list(session.scalars(query))


def record_result(
    session: Session, evaluation_id: str, result: dict[str, Any] | None, model: str | None
) -> None:
    """Store what the job found (None when it failed) and the completion time; no-op once deleted."""
    evaluation = session.get(GenerationEvaluation, evaluation_id)
    if evaluation is None:
        return
    evaluation.result = result
    if model:
        evaluation.evaluation_model = model
    evaluation.completed_at = utcnow()
