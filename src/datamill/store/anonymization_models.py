"""The anonymization schema: anonymization runs of seed datasets and the anonymized files they wrote.

A run is a job in the shared ``runs`` queue (``kind`` `ANONYMIZATION_JOB`), its ZIP of files another
(`ANONYMIZATION_ZIP_JOB`); the run keeps their ids and reads its public status from the job's
(`datamill.store.generation_models.public_status` with `ANONYMIZATION_STATUS`). The dataset is referenced
by id and its name is kept with the run, so deleting the dataset later leaves the run readable.

Deleting a run is soft: ``deleted_at`` is set, the row stays, and every read a tenant makes skips it.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import BigInteger, Float, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from datamill.store.models import Base

ANONYMIZATION_JOB = "anonymization"
ANONYMIZATION_ZIP_JOB = "anonymization_zip"

#: Job status → the public status of an anonymization run (a cancelled job is a deleted run's).
ANONYMIZATION_STATUS = {
    "queued": "PENDING",
    "running": "PROCESSING",
    "succeeded": "SUCCEEDED",
    "failed": "FAILED",
    "cancelled": "FAILED",
}


class AnonymizationRun(Base):
    """One anonymization of a seed dataset's files.

    ``request`` holds ``pii_types``, ``mask_config`` and ``threshold`` as resolved at creation;
    ``results`` the run's ``samples_processed``, ``entity_summary`` and ``entities_found`` once it ended.
    """

    __tablename__ = "anonymization_runs"
    __table_args__ = (Index("ix_anonymization_runs_tenant_created", "tenant_id", "created_at", "id"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    dataset_id: Mapped[str] = mapped_column(String(40))
    dataset_name: Mapped[str] = mapped_column(String(512))
    detection_method: Mapped[str] = mapped_column(String(16))
    llm_model_name: Mapped[str | None] = mapped_column(String(200))
    threshold: Mapped[float] = mapped_column(Float)
    request: Mapped[dict[str, Any]]
    results: Mapped[dict[str, Any] | None]
    job_id: Mapped[str] = mapped_column(String(40))
    zip_job_id: Mapped[str | None] = mapped_column(String(40))
    created_by_email: Mapped[str] = mapped_column(String(320))
    created_at: Mapped[dt.datetime]
    completed_at: Mapped[dt.datetime | None]
    deleted_at: Mapped[dt.datetime | None]


class AnonymizedFile(Base):
    """One file an anonymization run wrote, in the dataset's file order."""

    __tablename__ = "anonymized_files"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("anonymization_runs.id"), index=True)
    position: Mapped[int]
    path: Mapped[str] = mapped_column(String(1024))
    content_type: Mapped[str] = mapped_column(String(100))
    blob_key: Mapped[str] = mapped_column(String(1024))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
