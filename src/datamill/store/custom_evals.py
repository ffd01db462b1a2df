"""Repository of custom evaluations: add, read, find unfinished ones, record an ending and settle credits.

A dataset's list is newest first.

Reads a tenant makes are scoped by tenant and dataset, so another tenant's evaluation looks absent.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from datamill.store.models import CustomEval, Tenant

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


def finish_custom_eval(session: Session, eval_id: str, values: dict[str, Any], credits_used: float) -> bool:
    """Record how an unfinished evaluation ended, charge `credits_used` and give back the rest.

    False (nothing changed) when it had already ended, so an evaluation is settled once.
    """
    result = session.execute(
        update(CustomEval)
        .where(CustomEval.id == eval_id, CustomEval.status.in_(UNFINISHED))
        .values(**values, credits_used=credits_used)
    )
    if not getattr(result, "rowcount", 0):
        return False
    row = session.get(CustomEval, eval_id)
    assert row is not None
    refund = float(row.credits_reserved or 0.0) - credits_used
    session.execute(update(Tenant).where(Tenant.id == row.tenant_id).values(credits=Tenant.credits + refund))
    return True
