"""Repository of runs: launch one, claim it, keep its lease, record its progress, and settle it.

Every state change a worker makes is one conditional UPDATE, so two workers can never both own a run:

- `claim_next` takes a ``queued`` run, or a ``running`` one whose lease has expired (its worker died), by
  updating it only if it is still claimable; the loser of a race sees no row changed and tries the next.
  On PostgreSQL the candidate SELECT adds ``FOR UPDATE SKIP LOCKED``, so concurrent workers take different
  runs instead of racing for the same one; the conditional UPDATE alone is what keeps claims correct, on
  SQLite too (where a write locks the whole database anyway).
- `heartbeat`, `release` and `finish_run` change the run only while the caller still holds its lease
  (``worker_id`` matches and the run is ``running``); False means the lease was lost and the caller must stop.

Credits move in the same transactions: `reserve_credits` takes the estimate from the balance at launch only
if the balance covers it, and `finish_run` gives back the difference between the reservation and the credits
the run actually used.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import and_, case, func, literal, or_, select, update
from sqlalchemy.orm import Session

from datamill.store.models import Dataset, DatasetFile, Run, Tenant, utcnow

#: Run statuses in which a worker may still change the run.
ACTIVE = ("queued", "running")
#: The ``ingest_state`` of a derived dataset (translate, localize) while its run makes its data.
DERIVING = "deriving"


@dataclass(frozen=True)
class NewFile:
    """A file a run leaves as its dataset's own data (the output of a translate or localize run)."""

    file_name: str
    file_format: str
    blob_key: str
    size_bytes: int
    sha256: str


@dataclass(frozen=True)
class RunOutcome:
    """How a run ended, as the worker records it.

    Attributes:
        status: ``succeeded`` or ``failed``.
        rows_out, rows_rejected: output rows and rejected rows (for a failed run, those of finished batches).
        credits_used: what the run costs; the rest of the reservation goes back to the tenant.
        cost_usd: model spend over every attempt.
        error_data: ``{message, code, level}`` of a failed run.
        evaluation_status, evaluation: the quality evaluation's status and report.
        files, columns, row_count: for a run that makes its dataset's data (translate, localize), the files
            that now hold it, their columns and rows.
        settle: for a job on another resource (a generation job), what recording the outcome does to that
            resource; called in the transaction that records the outcome, only while the lease is held.
    """

    status: str
    rows_out: int = 0
    rows_rejected: int = 0
    credits_used: float = 0.0
    cost_usd: float = 0.0
    error_data: dict[str, Any] | None = None
    evaluation_status: str | None = None
    evaluation: dict[str, Any] | None = None
    files: list[NewFile] = field(default_factory=list)
    columns: list[str] | None = None
    row_count: int | None = None
    settle: Callable[[Session], None] | None = None


def get_run(session: Session, tenant_id: str, run_id: str) -> Run | None:
    return session.scalar(select(Run).where(Run.id == run_id, Run.tenant_id == tenant_id))


def get_run_any_tenant(session: Session, run_id: str) -> Run | None:
    """For the worker, which has only the id; never for answering a tenant's request."""
    return session.get(Run, run_id)


def run_by_key(session: Session, tenant_id: str, kind: str, source_dataset_id: str, key: str) -> Run | None:
    """The run a launch with this idempotency key made, if any."""
    return session.scalar(
        select(Run).where(
            Run.tenant_id == tenant_id,
            Run.kind == kind,
            Run.source_dataset_id == source_dataset_id,
            Run.idempotency_key == key,
        )
    )


def add_run(session: Session, run: Run) -> Run:
    """Insert a queued run; the flush raises `IntegrityError` when its idempotency key is already taken."""
    session.add(run)
    session.flush()
    return run


def reserve_credits(session: Session, tenant_id: str, amount: float) -> bool:
    """Take `amount` from the tenant's balance if the balance covers it; False (nothing taken) otherwise."""
    result = session.execute(
        update(Tenant)
        .where(Tenant.id == tenant_id, Tenant.credits >= amount)
        .values(credits=Tenant.credits - amount)
    )
    return bool(getattr(result, "rowcount", 0))


def start_dataset_run(session: Session, tenant_id: str, dataset_id: str, values: dict[str, Any]) -> bool:
    """Mark a ready, idle dataset running with `values` (run_id, ...); False if it is not ready or is busy."""
    result = session.execute(
        update(Dataset)
        .where(
            Dataset.id == dataset_id,
            Dataset.tenant_id == tenant_id,
            Dataset.deleted_at.is_(None),
            Dataset.ingest_state == "ready",
            Dataset.status != "running",
        )
        .values(status="running", error_data=None, updated_at=utcnow(), **values)
    )
    return bool(getattr(result, "rowcount", 0))


def _claimable(now: dt.datetime) -> Any:
    return or_(Run.status == "queued", and_(Run.status == "running", Run.lease_expires_at < now))


def claim_next(session: Session, worker_id: str, now: dt.datetime, lease_s: float) -> Run | None:
    """Take the oldest claimable run for `worker_id` with a lease of `lease_s` seconds, or None."""
    candidates = select(Run.id).where(_claimable(now)).order_by(Run.created_at, Run.id)
    if session.get_bind().dialect.name == "postgresql":
        # Lock the one candidate taken and skip rows other workers hold, so concurrent claims never queue
        # behind each other; locking more than one would hide runs from the other workers until commit.
        candidates = candidates.limit(1).with_for_update(skip_locked=True)
    else:
        candidates = candidates.limit(8)
    for run_id in session.scalars(candidates).all():
        result = session.execute(
            update(Run)
            .where(Run.id == run_id, _claimable(now))
            .values(
                status="running",
                worker_id=worker_id,
                # Attempts in a row without progress: rows processed since the last claim start again at 1.
                attempts=case((Run.processed_rows > Run.attempt_rows, 1), else_=Run.attempts + 1),
                attempt_rows=Run.processed_rows,
                heartbeat_at=now,
                lease_expires_at=now + dt.timedelta(seconds=lease_s),
                # Typed like the column, so `now` is stored as naive UTC: a bare aware datetime would make
                # PostgreSQL convert it to the server's time zone on the way into a timestamp column.
                started_at=func.coalesce(Run.started_at, literal(now, Run.started_at.type)),
                updated_at=now,
            )
        )
        if getattr(result, "rowcount", 0):
            return session.scalar(
                select(Run).where(Run.id == run_id).execution_options(populate_existing=True)
            )
    return None


def _owned(run_id: str, worker_id: str) -> Any:
    return and_(Run.id == run_id, Run.worker_id == worker_id, Run.status == "running")


def heartbeat(session: Session, run_id: str, worker_id: str, lease_s: float, values: dict[str, Any]) -> bool:
    """Extend the lease and record progress `values`; False when the caller no longer holds the run."""
    now = utcnow()
    result = session.execute(
        update(Run)
        .where(_owned(run_id, worker_id))
        .values(
            heartbeat_at=now, lease_expires_at=now + dt.timedelta(seconds=lease_s), updated_at=now, **values
        )
    )
    return bool(getattr(result, "rowcount", 0))


def record_progress(session: Session, run_id: str, worker_id: str, values: dict[str, Any]) -> bool:
    """Record progress `values` in the caller's transaction, leaving the lease as it is.

    False when the caller no longer holds the run, so that what it records with them is not recorded either.
    """
    result = session.execute(
        update(Run).where(_owned(run_id, worker_id)).values(updated_at=utcnow(), **values)
    )
    return bool(getattr(result, "rowcount", 0))


def release(session: Session, run_id: str, worker_id: str) -> bool:
    """Give a run back to the queue (a worker stopping); the attempt it was in does not count."""
    result = session.execute(
        update(Run)
        .where(_owned(run_id, worker_id))
        .values(
            status="queued",
            worker_id=None,
            lease_expires_at=None,
            attempts=Run.attempts - 1,
            updated_at=utcnow(),
        )
    )
    return bool(getattr(result, "rowcount", 0))


def finish_run(session: Session, run_id: str, worker_id: str, outcome: RunOutcome) -> bool:
    """Record how a run ended, settle its credits and settle its dataset; False if the lease was lost."""
    now = utcnow()
    result = session.execute(
        update(Run)
        .where(_owned(run_id, worker_id))
        .values(
            status=outcome.status,
            rows_out=outcome.rows_out,
            rows_rejected=outcome.rows_rejected,
            credits_used=outcome.credits_used,
            cost_usd=outcome.cost_usd,
            error_data=outcome.error_data,
            evaluation_status=outcome.evaluation_status,
            evaluation=outcome.evaluation,
            lease_expires_at=None,
            finished_at=now,
            updated_at=now,
        )
    )
    if not getattr(result, "rowcount", 0):
        return False
    run = session.get(Run, run_id)
    assert run is not None
    refund = float(run.credits_reserved) - outcome.credits_used
    session.execute(update(Tenant).where(Tenant.id == run.tenant_id).values(credits=Tenant.credits + refund))
    scrub_credentials(run)  # a job's credentials never outlive it
    dataset = session.get(Dataset, run.dataset_id) if run.dataset_id is not None else None
    if dataset is not None and dataset.run_id == run_id:
        _settle_dataset(session, dataset, outcome, now)
    if outcome.settle is not None:
        outcome.settle(session)
    return True


def scrub_credentials(run: Run | None) -> None:
    """Erase the credentials a job's request carried (``request["credentials"]``; the job has ended)."""
    if run is not None and isinstance(run.request, dict) and "credentials" in run.request:
        run.request = {key: value for key, value in run.request.items() if key != "credentials"}


def _settle_dataset(session: Session, dataset: Dataset, outcome: RunOutcome, now: dt.datetime) -> None:
    dataset.status = outcome.status
    dataset.error_data = outcome.error_data
    dataset.updated_at = now
    if outcome.row_count is not None:
        dataset.row_count = outcome.row_count
    if outcome.columns is not None:
        dataset.columns = outcome.columns
    for position, file in enumerate(outcome.files):
        session.add(
            DatasetFile(
                dataset_id=dataset.id,
                position=position,
                file_name=file.file_name,
                file_format=file.file_format,
                blob_key=file.blob_key,
                size_bytes=file.size_bytes,
                sha256=file.sha256,
            )
        )
    if dataset.ingest_state == DERIVING:  # a derived dataset's data is settled now, whatever the outcome
        dataset.ingest_state = "ready"
