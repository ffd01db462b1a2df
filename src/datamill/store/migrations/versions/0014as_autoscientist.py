"""AutoScientist runs: a train-and-evaluate loop on a dataset, its iterations and its best adapter.

Revision ID: 0014as
Revises: 0013rl
Create Date: 2026-12-06 18:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014as"
down_revision: str | None = "0013rl"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "autoscientist_runs",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("dataset_id", sa.String(length=40), nullable=False),
        sa.Column("model", sa.String(length=500), nullable=False),
        sa.Column("training_method", sa.String(length=16), nullable=False),
        sa.Column("data_format", sa.String(length=16), nullable=False),
        sa.Column("column_mapping", sa.JSON(), nullable=True),
        sa.Column("hyperparams", sa.JSON(), nullable=False),
        sa.Column("max_iterations", sa.Integer(), nullable=False),
        sa.Column("target_win_rate", sa.Float(), nullable=False),
        sa.Column("idempotency_key", sa.String(length=255), nullable=True),
        sa.Column("job_id", sa.String(length=40), nullable=False),
        sa.Column("iterations", sa.JSON(), nullable=False),
        sa.Column("best_win_rate", sa.Float(), nullable=True),
        sa.Column("best_hyperparams", sa.JSON(), nullable=True),
        sa.Column("best_iteration", sa.Integer(), nullable=True),
        sa.Column("artifact_key", sa.String(length=1024), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("completed_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_autoscientist_runs_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_autoscientist_runs")),
    )
    op.create_index(
        "ix_autoscientist_runs_tenant_created", "autoscientist_runs", ["tenant_id", "created_at", "id"]
    )
    op.create_index(
        "ix_autoscientist_runs_tenant_dataset_key",
        "autoscientist_runs",
        ["tenant_id", "dataset_id", "idempotency_key"],
    )


def downgrade() -> None:
    op.drop_index("ix_autoscientist_runs_tenant_dataset_key", table_name="autoscientist_runs")
    op.drop_index("ix_autoscientist_runs_tenant_created", table_name="autoscientist_runs")
    op.drop_table("autoscientist_runs")
