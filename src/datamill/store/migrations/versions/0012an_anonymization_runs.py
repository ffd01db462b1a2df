"""Anonymization runs of seed datasets and the anonymized files they wrote.

Revision ID: 0012an
Revises: 0011ws
Create Date: 2026-12-06 17:30:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012an"
down_revision: str | None = "0011ws"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "anonymization_runs",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("dataset_id", sa.String(length=40), nullable=False),
        sa.Column("dataset_name", sa.String(length=512), nullable=False),
        sa.Column("detection_method", sa.String(length=16), nullable=False),
        sa.Column("llm_model_name", sa.String(length=200), nullable=True),
        sa.Column("threshold", sa.Float(), nullable=False),
        sa.Column("request", sa.JSON(), nullable=False),
        sa.Column("results", sa.JSON(), nullable=True),
        sa.Column("job_id", sa.String(length=40), nullable=False),
        sa.Column("zip_job_id", sa.String(length=40), nullable=True),
        sa.Column("created_by_email", sa.String(length=320), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("completed_at", sa.DateTime(), nullable=True),
        sa.Column("deleted_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_anonymization_runs_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_anonymization_runs")),
    )
    op.create_index(
        "ix_anonymization_runs_tenant_created", "anonymization_runs", ["tenant_id", "created_at", "id"]
    )
    op.create_table(
        "anonymized_files",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("run_id", sa.String(length=40), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("path", sa.String(length=1024), nullable=False),
        sa.Column("content_type", sa.String(length=100), nullable=False),
        sa.Column("blob_key", sa.String(length=1024), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"], ["anonymization_runs.id"], name=op.f("fk_anonymized_files_run_id_anonymization_runs")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_anonymized_files")),
    )
    op.create_index(op.f("ix_anonymized_files_run_id"), "anonymized_files", ["run_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_anonymized_files_run_id"), table_name="anonymized_files")
    op.drop_table("anonymized_files")
    op.drop_index("ix_anonymization_runs_tenant_created", table_name="anonymization_runs")
    op.drop_table("anonymization_runs")
