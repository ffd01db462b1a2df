"""The metadata schema: SQLAlchemy 2 ORM models of tenants, API keys, datasets, their files and uploads.

Also custom evaluations and idempotency records.

Every row that a tenant owns carries `tenant_id`, and every repository query filters on it, so one tenant can
never read another's rows. Datetimes are stored as naive UTC (`UtcDateTime`) so that SQLite, which keeps no
time zone, and PostgreSQL compare and sort them the same way; they come back as aware UTC datetimes.

The Alembic migrations under `store/migrations/` build exactly this schema; a test checks that they agree.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    MetaData,
    Numeric,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

# Stable constraint names, so migrations can refer to them on every database.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UtcDateTime(TypeDecorator[dt.datetime]):
    """A datetime stored as naive UTC and read back as aware UTC; naive input is taken to be UTC."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC).replace(tzinfo=None)
        return value

    def process_result_value(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        return None if value is None else value.replace(tzinfo=dt.UTC)


def utcnow() -> dt.datetime:
    """The current time as an aware UTC datetime."""
    return dt.datetime.now(dt.UTC)


def naive_utc(moment: dt.datetime) -> dt.datetime:
    """`moment` in UTC without a zone: SQLite returns naive datetimes, PostgreSQL aware ones."""
    return moment.astimezone(dt.UTC).replace(tzinfo=None) if moment.tzinfo else moment


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        dt.datetime: UtcDateTime(),
        dict[str, Any]: JSON(),
        list[Any]: JSON(),
    }


class Tenant(Base):
    """A customer account: owns keys and datasets and holds a credit balance."""

    __tablename__ = "tenants"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    # Numeric, not float, so balances add up exactly on PostgreSQL; read as float (no Decimal on SQLite).
    credits: Mapped[float] = mapped_column(Numeric(20, 6, asdecimal=False))
    created_at: Mapped[dt.datetime]


class ApiKey(Base):
    """A bearer key, stored as the sha256 of the key; `prefix` identifies it in listings."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), index=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[dt.datetime]
    revoked_at: Mapped[dt.datetime | None]


class Dataset(Base):
    """A dataset as the wire APIs see it, plus what ingest learnt about its files.

    `status` is the public status (pending, running, awaiting_input, succeeded, failed). `ingest_state` is the
    upload's progress: ``awaiting_upload`` until the upload is completed, ``importing`` while the file of a
    URL import (`source_url`) is fetched, ``uploaded`` while the files wait to be read (both re-queued after
    a restart), ``ready`` once read (whatever the outcome).
    """

    __tablename__ = "datasets"
    __table_args__ = (
        Index("ix_datasets_tenant_created", "tenant_id", "created_at", "id"),
        Index("ix_datasets_tenant_updated", "tenant_id", "updated_at", "id"),
        Index("ix_datasets_tenant_name", "tenant_id", "name", "id"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    name: Mapped[str] = mapped_column(String(512))
    description: Mapped[str | None] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(32))
    source_dataset_id: Mapped[str | None] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(32))
    ingest_state: Mapped[str] = mapped_column(String(32), index=True)
    processing_mode: Mapped[str] = mapped_column(String(16))
    source_column_mapping: Mapped[dict[str, Any] | None]
    configured_column_mapping: Mapped[dict[str, Any] | None]
    columns: Mapped[list[Any] | None]
    row_count: Mapped[int | None] = mapped_column(BigInteger)
    image_column_formats: Mapped[dict[str, Any] | None]
    error_data: Mapped[dict[str, Any] | None]
    run_id: Mapped[str | None] = mapped_column(String(40))
    source_url: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime]
    updated_at: Mapped[dt.datetime]
    deleted_at: Mapped[dt.datetime | None]


class DatasetFile(Base):
    """One stored file of a dataset, in upload order; a batch upload has several."""

    __tablename__ = "dataset_files"

    id: Mapped[int] = mapped_column(primary_key=True)
    dataset_id: Mapped[str] = mapped_column(ForeignKey("datasets.id"), index=True)
    position: Mapped[int]
    file_name: Mapped[str] = mapped_column(String(512))
    file_format: Mapped[str] = mapped_column(String(16))
    blob_key: Mapped[str] = mapped_column(String(1024))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))


class Upload(Base):
    """An upload slot: where one file's bytes go, and whether they have arrived.

    `state` moves pending → receiving (a PUT holds it) → received; a failed PUT puts it back to pending, so
    the signed URL can be retried, but once received it can never be written again. `completed` is set when
    an upload/complete call turned the bytes into a dataset file.
    """

    __tablename__ = "uploads"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), index=True)
    dataset_id: Mapped[str | None] = mapped_column(ForeignKey("datasets.id"), index=True)
    s3_key: Mapped[str] = mapped_column(String(1024), unique=True)
    file_name: Mapped[str] = mapped_column(String(512))
    file_format: Mapped[str] = mapped_column(String(16))
    declared_size: Mapped[int | None] = mapped_column(BigInteger)
    state: Mapped[str] = mapped_column(String(16))
    size_bytes: Mapped[int | None] = mapped_column(BigInteger)
    sha256: Mapped[str | None] = mapped_column(String(64))
    completed: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime]
    expires_at: Mapped[dt.datetime]
    received_at: Mapped[dt.datetime | None]


class CustomEval(Base):
    """A custom-rubric evaluation of a dataset: an LLM judge scores a sample of rows before and after.

    `status` moves pending → running → succeeded or failed (with `error_message`). `run_id` is the run whose
    output was judged (None: the dataset's own rows, judged "before" only). `results` keeps the per-row
    judgements, so every score can be traced. `credits_reserved` was taken from the tenant's balance when the
    evaluation was created; `credits_used` is what it was charged when it ended (the rest was given back).
    """

    __tablename__ = "custom_evals"
    __table_args__ = (Index("ix_custom_evals_dataset_created", "dataset_id", "created_at", "id"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), index=True)
    dataset_id: Mapped[str] = mapped_column(ForeignKey("datasets.id"))
    run_id: Mapped[str | None] = mapped_column(String(40))
    name: Mapped[str | None] = mapped_column(String(512))
    judge_prompt: Mapped[str] = mapped_column(Text)
    model: Mapped[str | None] = mapped_column(String(200))
    sample_size: Mapped[int]
    status: Mapped[str] = mapped_column(String(16), index=True)
    score_before: Mapped[float | None]
    score_after: Mapped[float | None]
    improvement_percent: Mapped[float | None]
    scored_rows: Mapped[int | None]
    error_message: Mapped[str | None] = mapped_column(Text)
    results: Mapped[dict[str, Any] | None]
    created_at: Mapped[dt.datetime]
    started_at: Mapped[dt.datetime | None]
    completed_at: Mapped[dt.datetime | None]
    credits_reserved: Mapped[float] = mapped_column(Numeric(20, 6, asdecimal=False), default=0.0)
    credits_used: Mapped[float | None] = mapped_column(Numeric(20, 6, asdecimal=False))


class IdempotencyRecord(Base):
    """What a request made under an idempotency key, so a replay answers the same (combine's header).

    The key is unique per (tenant, scope); `request_hash` tells a replay from a different request that reuses
    the key.
    """

    __tablename__ = "idempotency_records"

    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), primary_key=True)
    scope: Mapped[str] = mapped_column(String(40), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    resource_id: Mapped[str] = mapped_column(String(40))
    created_at: Mapped[dt.datetime]


class Run(Base):
    """A durable job: one adaptation (or translate/localize) of a dataset, claimed and run by a worker.

    The generation jobs (`datamill.store.generation_models.JOB_KINDS`) share the queue: they have no
    `dataset_id`, and `source_dataset_id` holds the id of the resource they work on (spec, generation run,
    evaluation).

    `status` moves queued → running → succeeded | failed, or to cancelled (`datamill.store.jobs.cancel_job`).
    A worker holds a running run by its lease (`worker_id`, `lease_expires_at`, extended by heartbeats); a
    running run whose lease has expired belongs to nobody and is claimed again, which resumes it from its
    checkpoint. `attempts` counts the claims in a row that made no progress: a claim after the run processed
    rows since the previous one (`attempt_rows` holds `processed_rows` as it was then) starts again at 1, so
    workers killed for reasons of their own do not use up a run's attempts. `dataset_id` is
    the dataset the run writes (the dataset itself for adapt, a new derived dataset for translate/localize);
    `source_dataset_id` is the one whose files it reads, and scopes the idempotency key with the kind.
    """

    __tablename__ = "runs"
    __table_args__ = (
        UniqueConstraint(
            "tenant_id", "kind", "source_dataset_id", "idempotency_key", name="uq_runs_idempotency"
        ),
        Index("ix_runs_status_lease", "status", "lease_expires_at"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), index=True)
    dataset_id: Mapped[str | None] = mapped_column(ForeignKey("datasets.id"), index=True)
    source_dataset_id: Mapped[str] = mapped_column(String(40))
    kind: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16))
    request: Mapped[dict[str, Any]]
    options: Mapped[dict[str, Any]]
    model: Mapped[str] = mapped_column(String(200))
    estimate: Mapped[dict[str, Any] | None]
    idempotency_key: Mapped[str | None] = mapped_column(String(255))
    launch_response: Mapped[dict[str, Any]]
    credits_reserved: Mapped[float] = mapped_column(Numeric(20, 6, asdecimal=False))
    credits_used: Mapped[float | None] = mapped_column(Numeric(20, 6, asdecimal=False))
    cost_usd: Mapped[float] = mapped_column(Numeric(20, 8, asdecimal=False))
    processed_rows: Mapped[int] = mapped_column(BigInteger)
    total_rows: Mapped[int | None] = mapped_column(BigInteger)
    rows_out: Mapped[int | None] = mapped_column(BigInteger)
    rows_rejected: Mapped[int | None] = mapped_column(BigInteger)
    worker_id: Mapped[str | None] = mapped_column(String(120))
    attempts: Mapped[int]
    attempt_rows: Mapped[int] = mapped_column(BigInteger, default=0)
    heartbeat_at: Mapped[dt.datetime | None]
    lease_expires_at: Mapped[dt.datetime | None]
    error_data: Mapped[dict[str, Any] | None]
    evaluation_status: Mapped[str | None] = mapped_column(String(16))
    evaluation: Mapped[dict[str, Any] | None]
    created_at: Mapped[dt.datetime]
    updated_at: Mapped[dt.datetime]
    started_at: Mapped[dt.datetime | None]
    finished_at: Mapped[dt.datetime | None]
