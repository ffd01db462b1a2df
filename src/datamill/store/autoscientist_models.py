"""The AutoScientist schema: one row per train-and-evaluate loop on a dataset.

The loop's work is a job in the shared ``runs`` queue (``kind`` `AUTOSCIENTIST_JOB`), claimed, leased and
cancelled like every other job; the row keeps the id of its job in ``job_id`` and its public status is read
from the job's (`public_status`), so there is one source of truth. What the loop learns is written here as
it goes: every finished iteration (``iterations``), the best win rate, the hyperparameters that reached it
and the blob key of the best adapter (``artifact_key``).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Float, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from datamill.store.models import Base

#: ``runs.kind`` of an AutoScientist loop.
AUTOSCIENTIST_JOB = "autoscientist"

#: Job status (``runs.status``) → the public status of an AutoScientist run.
RUN_STATUS = {
    "queued": "pending",
    "running": "running",
    "succeeded": "succeeded",
    "failed": "failed",
    "cancelled": "cancelled",
}
#: Public statuses of a run that has ended.
TERMINAL = ("succeeded", "failed", "cancelled")


def public_status(job_status: str | None) -> str:
    """The public status for a job status (a run whose job is gone reads as failed)."""
    return RUN_STATUS.get(job_status or "failed", "failed")


class AutoscientistRun(Base):
    """An AutoScientist loop: its request as resolved at creation, and what its iterations found."""

    __tablename__ = "autoscientist_runs"
    __table_args__ = (
        Index("ix_autoscientist_runs_tenant_created", "tenant_id", "created_at", "id"),
        Index("ix_autoscientist_runs_tenant_dataset_key", "tenant_id", "dataset_id", "idempotency_key"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    dataset_id: Mapped[str] = mapped_column(String(40))
    model: Mapped[str] = mapped_column(String(500))
    training_method: Mapped[str] = mapped_column(String(16))
    data_format: Mapped[str] = mapped_column(String(16))
    column_mapping: Mapped[dict[str, Any] | None]
    hyperparams: Mapped[dict[str, Any]]
    max_iterations: Mapped[int]
    target_win_rate: Mapped[float] = mapped_column(Float)
    idempotency_key: Mapped[str | None] = mapped_column(String(255))
    job_id: Mapped[str] = mapped_column(String(40))
    iterations: Mapped[list[Any]]
    best_win_rate: Mapped[float | None] = mapped_column(Float)
    best_hyperparams: Mapped[dict[str, Any] | None]
    best_iteration: Mapped[int | None]
    artifact_key: Mapped[str | None] = mapped_column(String(1024))
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime]
    completed_at: Mapped[dt.datetime | None]
