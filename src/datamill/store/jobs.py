"""Queueing and cancelling the generation jobs (spec analysis, generation, evaluation, ZIP) in ``runs``.

A job is a `Run` row without a dataset: ``source_dataset_id`` holds the id of the resource it works on and
``request`` what the executor needs. Credentials a job needs for its model calls (e.g. a Databricks client
secret given with one run) travel in ``request["credentials"]`` and are erased when the job ends
(`datamill.store.runs.finish_run`, `cancel_job`); they are never part of a resource's public fields.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from datamill.store.ids import new_id
from datamill.store.models import Run, Tenant, utcnow
from datamill.store.runs import ACTIVE, add_run, scrub_credentials

#: The key of a job request that holds credentials; erased when the job ends.
CREDENTIALS = "credentials"


def add_job(
    session: Session,
    tenant_id: str,
    kind: str,
    resource_id: str,
    request: dict[str, Any],
    model: str = "",
    *,
    credits_reserved: float = 0.0,
) -> Run:
    """Queue a job of `kind` on `resource_id`; the worker that claims it reads `request`.

    `credits_reserved` records credits the caller already took from the tenant's balance
    (`datamill.store.runs.reserve_credits`): the job's end settles them, a cancel gives them back.
    """
    now = utcnow()
    run = Run(
        id=new_id("job"),
        tenant_id=tenant_id,
        dataset_id=None,
        source_dataset_id=resource_id,
        kind=kind,
        status="queued",
        request=request,
        options={},
        model=model,
        launch_response={},
        credits_reserved=credits_reserved,
        cost_usd=0.0,
        processed_rows=0,
        attempts=0,
        created_at=now,
        updated_at=now,
    )
    return add_run(session, run)


def get_job(session: Session, tenant_id: str, job_id: str | None) -> Run | None:
    """The tenant's job `job_id`, or None."""
    if job_id is None:
        return None
    return session.scalar(select(Run).where(Run.id == job_id, Run.tenant_id == tenant_id))


def cancel_job(session: Session, tenant_id: str, job_id: str) -> bool:
    """Cancel a queued or running job; False when it already ended.

    A running job's worker notices at its next heartbeat (the lease is gone) and stops the work; the job
    stays cancelled and is never claimed again.
    """
    now = utcnow()
    result = session.execute(
        update(Run)
        .where(Run.id == job_id, Run.tenant_id == tenant_id, Run.status.in_(ACTIVE))
        .values(status="cancelled", lease_expires_at=None, finished_at=now, updated_at=now)
    )
    if not getattr(result, "rowcount", 0):
        return False
    job = session.get(Run, job_id)
    scrub_credentials(job)
    if job is not None and job.credits_reserved:  # its worker's outcome will not be recorded: give them back
        refund = float(job.credits_reserved)
        job.credits_used = 0.0
        session.execute(update(Tenant).where(Tenant.id == tenant_id).values(credits=Tenant.credits + refund))
    return True
