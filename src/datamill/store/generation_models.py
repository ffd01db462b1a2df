"""The generation schema: seed datasets, specs, generation runs, their files and evaluations.

These are the Dataframer API's resources: seed datasets and their files, specs and their versions,
generation runs, the files they wrote, and evaluations of runs.

Work that takes time (analysing seeds into a spec, a generation run, an evaluation, building a run's ZIP)
is a job in the shared ``runs`` queue (`datamill.store.models.Run`, ``kind`` one of `JOB_KINDS`), claimed,
leased and resumed by the same workers as adaptation runs. Each resource keeps the id of its job in
``job_id``; its public status is read from the job's (`public_status`), so there is one source of truth.

Every row a tenant owns carries ``tenant_id`` and every query filters on it.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from datamill.store.models import Base

#: ``runs.kind`` of the generation jobs.
SPEC_JOB = "spec_analysis"
GENERATION_JOB = "generation"
GENERATION_EVAL_JOB = "generation_eval"
GENERATION_ZIP_JOB = "generation_zip"
JOB_KINDS = (SPEC_JOB, GENERATION_JOB, GENERATION_EVAL_JOB, GENERATION_ZIP_JOB)

#: Job status (``runs.status``) → the public status of a spec.
SPEC_STATUS = {"queued": "PROCESSING", "running": "PROCESSING", "succeeded": "SUCCEEDED", "failed": "FAILED"}
#: Job status → the public status of a generation run (evaluations use the same, without CANCELED).
RUN_STATUS = {
    "queued": "PENDING",
    "running": "PROCESSING",
    "succeeded": "SUCCEEDED",
    "failed": "FAILED",
    "cancelled": "CANCELED",
}


def public_status(job_status: str | None, table: dict[str, str]) -> str:
    """The public status for a job status (a resource whose job is gone reads as failed)."""
    return table.get(job_status or "failed", "FAILED")


class SeedDataset(Base):
    """Seed examples a spec is written from: one file of rows, several files, or several folders."""

    __tablename__ = "seed_datasets"
    __table_args__ = (
        UniqueConstraint("tenant_id", "name", name="uq_seed_datasets_tenant_name"),
        Index("ix_seed_datasets_tenant_created", "tenant_id", "created_at", "id"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    name: Mapped[str] = mapped_column(String(512))
    description: Mapped[str | None] = mapped_column(Text)
    dataset_type: Mapped[str] = mapped_column(String(16))
    file_count: Mapped[int]
    folder_count: Mapped[int]
    sample_count: Mapped[int | None] = mapped_column(BigInteger)
    created_by_email: Mapped[str] = mapped_column(String(320))
    created_at: Mapped[dt.datetime]


class SeedFile(Base):
    """One file of a seed dataset, in upload (or archive) order; ``folder`` is set for folder datasets."""

    __tablename__ = "seed_files"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    dataset_id: Mapped[str] = mapped_column(ForeignKey("seed_datasets.id"), index=True)
    position: Mapped[int]
    path: Mapped[str] = mapped_column(String(1024))
    folder: Mapped[str | None] = mapped_column(String(512))
    file_type: Mapped[str] = mapped_column(String(100))
    blob_key: Mapped[str] = mapped_column(String(1024))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))


class Spec(Base):
    """A generation spec; its YAML lives in `SpecVersion` rows, version 1 written by the analysis job.

    ``dataset_id`` is None for a seedless spec (written from ``generation_objectives``).
    """

    __tablename__ = "specs"
    __table_args__ = (
        UniqueConstraint("tenant_id", "name", name="uq_specs_tenant_name"),
        Index("ix_specs_tenant_created", "tenant_id", "created_at", "id"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    name: Mapped[str] = mapped_column(String(512))
    description: Mapped[str | None] = mapped_column(Text)
    dataset_id: Mapped[str | None] = mapped_column(ForeignKey("seed_datasets.id"), index=True)
    dataset_type: Mapped[str] = mapped_column(String(16))
    generation_objectives: Mapped[str | None] = mapped_column(Text)
    runtime_params: Mapped[dict[str, Any]]
    job_id: Mapped[str | None] = mapped_column(String(40))
    created_by_email: Mapped[str] = mapped_column(String(320))
    created_at: Mapped[dt.datetime]
    updated_at: Mapped[dt.datetime]


class SpecVersion(Base):
    """One version of a spec's YAML; versions count from 1 and are never changed once written."""

    __tablename__ = "spec_versions"
    __table_args__ = (UniqueConstraint("spec_id", "version", name="uq_spec_versions_spec_version"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    spec_id: Mapped[str] = mapped_column(ForeignKey("specs.id"), index=True)
    version: Mapped[int]
    content_yaml: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime]


class GenerationRun(Base):
    """A generation run of a spec version; its status, progress and cost are those of its job.

    The job's ``processed_rows`` counts accepted samples, ``rows_rejected`` rejected candidates and
    ``cost_usd`` the model spend, all kept live by the worker's heartbeat. ``summary`` is the run summary
    (candidates, pass rate, rejections per gate, usage) once it finished.

    ``request`` is the validated run body without credentials; ``runtime_params`` the resolved parameters.
    ``zip_job_id`` is the job building the ZIP of every generated file, once one was asked for.
    """

    __tablename__ = "generation_runs"
    __table_args__ = (Index("ix_generation_runs_tenant_created", "tenant_id", "created_at", "id"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    spec_id: Mapped[str] = mapped_column(ForeignKey("specs.id"), index=True)
    spec_version: Mapped[int]
    number_of_samples: Mapped[int]
    request: Mapped[dict[str, Any]]
    runtime_params: Mapped[dict[str, Any]]
    job_id: Mapped[str] = mapped_column(String(40))
    summary: Mapped[dict[str, Any] | None]
    zip_job_id: Mapped[str | None] = mapped_column(String(40))
    created_by_email: Mapped[str] = mapped_column(String(320))
    created_at: Mapped[dt.datetime]
    completed_at: Mapped[dt.datetime | None]


class GeneratedFile(Base):
    """One file a generation run wrote (a sample, its metadata, the run summary), in order."""

    __tablename__ = "generated_files"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("generation_runs.id"), index=True)
    position: Mapped[int]
    path: Mapped[str] = mapped_column(String(1024))
    file_type: Mapped[str] = mapped_column(String(100))
    blob_key: Mapped[str] = mapped_column(String(1024))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))


class GenerationEvaluation(Base):
    """An evaluation of a generation run: each sample classified on each spec axis by a judge model.

    ``result`` holds ``distribution_analysis``, ``sample_classifications``, ``conformance_score`` and the
    conformant / non-conformant areas, once the job succeeded.
    """

    __tablename__ = "generation_evaluations"
    __table_args__ = (Index("ix_generation_evaluations_run_created", "run_id", "created_at", "id"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), index=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("generation_runs.id"))
    evaluation_model: Mapped[str | None] = mapped_column(String(200))
    job_id: Mapped[str] = mapped_column(String(40))
    result: Mapped[dict[str, Any] | None]
    created_by_email: Mapped[str] = mapped_column(String(320))
    created_at: Mapped[dt.datetime]
    completed_at: Mapped[dt.datetime | None]
