"""Custom evaluations (LLM judge with a user rubric) and idempotency records (combine's Idempotency-Key).

Revision ID: 0002ce
Revises: 0001
Create Date: 2026-11-22 09:17:03.684662
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002ce"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "idempotency_records",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("scope", sa.String(length=40), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("resource_id", sa.String(length=40), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_idempotency_records_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("tenant_id", "scope", "key", name=op.f("pk_idempotency_records")),
    )
    op.create_table(
        "custom_evals",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("dataset_id", sa.String(length=40), nullable=False),
        sa.Column("run_id", sa.String(length=40), nullable=True),
        sa.Column("name", sa.String(length=512), nullable=True),
        sa.Column("judge_prompt", sa.Text(), nullable=False),
        sa.Column("model", sa.String(length=200), nullable=True),
        sa.Column("sample_size", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("score_before", sa.Double(), nullable=True),
        sa.Column("score_after", sa.Double(), nullable=True),
        sa.Column("improvement_percent", sa.Double(), nullable=True),
        sa.Column("scored_rows", sa.Integer(), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("results", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=True),
        sa.Column("completed_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["dataset_id"], ["datasets.id"], name=op.f("fk_custom_evals_dataset_id_datasets")
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_custom_evals_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_custom_evals")),
    )
    with op.batch_alter_table("custom_evals", schema=None) as batch_op:
        batch_op.create_index(
            "ix_custom_evals_dataset_created", ["dataset_id", "created_at", "id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_custom_evals_status"), ["status"], unique=False)
        batch_op.create_index(batch_op.f("ix_custom_evals_tenant_id"), ["tenant_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("custom_evals", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_custom_evals_tenant_id"))
        batch_op.drop_index(batch_op.f("ix_custom_evals_status"))
        batch_op.drop_index("ix_custom_evals_dataset_created")

    op.drop_table("custom_evals")
    op.drop_table("idempotency_records")
