"""Repository of AutoScientist runs (`datamill.store.autoscientist_models`); scoped by tenant."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from datamill.store.autoscientist_models import AutoscientistRun
from datamill.store.models import Run
from datamill.store.runs import ACTIVE


def add_autoscientist_run(session: Session, run: AutoscientistRun) -> AutoscientistRun:
    session.add(run)
    session.flush()
    return run


def get_autoscientist_run(session: Session, tenant_id: str, run_id: str) -> AutoscientistRun | None:
    """The tenant's run `run_id`, or None (another tenant's id reads as absent)."""
    return session.scalar(
        select(AutoscientistRun).where(AutoscientistRun.id == run_id, AutoscientistRun.tenant_id == tenant_id)
    )


def get_autoscientist_run_any_tenant(session: Session, run_id: str) -> AutoscientistRun | None:
    """For the job's executor, which has only the id; never for answering a tenant's request."""
    return session.get(AutoscientistRun, run_id)


def in_progress_with_key(
    session: Session, tenant_id: str, dataset_id: str, key: str
) -> AutoscientistRun | None:
    """The run of this dataset started with idempotency key `key` whose job has not ended, or None."""
    stmt = (
        select(AutoscientistRun)
        .join(Run, Run.id == AutoscientistRun.job_id)
        .where(
            AutoscientistRun.tenant_id == tenant_id,
            AutoscientistRun.dataset_id == dataset_id,
            AutoscientistRun.idempotency_key == key,
            Run.status.in_(ACTIVE),
        )
    )
    return session.scalar(stmt.limit(1))


def page_autoscientist_runs(
    session: Session,
    tenant_id: str,
    dataset_id: str | None,
    after: tuple[dt.datetime, str] | None,
    limit: int,
) -> list[AutoscientistRun]:
    """Up to `limit` runs, newest first, starting after the (created_at, id) pair `after`."""
    conds: list[Any] = [AutoscientistRun.tenant_id == tenant_id]
    if dataset_id is not None:
        conds.append(AutoscientistRun.dataset_id == dataset_id)
    if after is not None:
        created, last_id = after
        conds.append(
            or_(
                AutoscientistRun.created_at < created,
                and_(AutoscientistRun.created_at == created, AutoscientistRun.id < last_id),
            )
        )
    order = (AutoscientistRun.created_at.desc(), AutoscientistRun.id.desc())
    return list(session.scalars(select(AutoscientistRun).where(*conds).order_by(*order).limit(limit)))


def artifact_blob_key(tenant_id: str, run_id: str, iteration: int) -> str:
    """Where the adapter an iteration trained is kept in the blob store."""
    return f"autoscientist/{tenant_id}/{run_id}/iteration-{iteration}.tar.gz"


def in_progress_on_dataset(session: Session, tenant_id: str, dataset_id: str) -> str | None:
    """The id of a run training on this dataset whose job has not ended, or None."""
    stmt = (
        select(AutoscientistRun.id)
        .join(Run, Run.id == AutoscientistRun.job_id)
        .where(
            AutoscientistRun.tenant_id == tenant_id,
            AutoscientistRun.dataset_id == dataset_id,
            Run.status.in_(ACTIVE),
        )
    )
    return session.scalar(stmt.limit(1))
