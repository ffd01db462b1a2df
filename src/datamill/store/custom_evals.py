"""Repository of custom evaluations: add, read one or a dataset's list (newest first), find unfinished ones.

Reads a tenant makes are scoped by tenant and dataset, so another tenant's evaluation looks absent.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from datamill.store.models import CustomEval

#: Statuses of an evaluation that has not finished; a restart runs these again.
UNFINISHED = ("pending", "running")


def add_custom_eval(session: Session, row: CustomEval) -> CustomEval:
    session.add(row)
    session.flush()
    return row


def get_custom_eval(session: Session, tenant_id: str, dataset_id: str, eval_id: str) -> CustomEval | None:
    return session.scalar(
        select(CustomEval).where(
            CustomEval.id == eval_id, CustomEval.tenant_id == tenant_id, CustomEval.dataset_id == dataset_id
        )
    )


def get_custom_eval_any_tenant(session: Session, eval_id: str) -> CustomEval | None:
    """For the background runner, which has only the id; never for answering a tenant's request."""
    return session.get(CustomEval, eval_id)


def list_custom_evals(session: Session, tenant_id: str, dataset_id: str) -> list[CustomEval]:
    """A dataset's evaluations, newest first (the id breaks ties)."""
    stmt = (
        select(CustomEval)
        .where(CustomEval.tenant_id == tenant_id, CustomEval.dataset_id == dataset_id)
        .order_by(CustomEval.created_at.desc(), CustomEval.id.desc())
    )
    return list(session.scalars(stmt))


def unfinished_ids(session: Session) -> list[str]:
    """Evaluations a stopped server left pending or running, oldest first."""
    stmt = select(CustomEval.id).where(CustomEval.status.in_(UNFINISHED)).order_by(CustomEval.created_at)
    return list(session.scalars(stmt))
