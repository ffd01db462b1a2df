"""Red-team specs and runs, judges and judge evaluations.

Revision ID: 0009rj
Revises: 0008rs
Create Date: 2026-12-06 17:40:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009rj"
down_revision: str | None = "0008rs"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table(
        "judges",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=512), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("rubric", sa.Text(), nullable=False),
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column("dimensions", sa.JSON(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_by_email", sa.String(length=320), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f("fk_judges_tenant_id_tenants")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_judges")),
        sa.UniqueConstraint("tenant_id", "name", name="uq_judges_tenant_name"),
    )
    with op.batch_alter_table("judges", schema=None) as batch_op:
        batch_op.create_index("ix_judges_tenant_created", ["tenant_id", "created_at", "id"], unique=False)

    op.create_table(
        "red_team_specs",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=512), nullable=False),
        sa.Column("app_description", sa.Text(), nullable=False),
        sa.Column("domain_description", sa.Text(), nullable=False),
        sa.Column("concerns", sa.Text(), nullable=True),
        sa.Column("created_by_email", sa.String(length=320), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_red_team_specs_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_red_team_specs")),
        sa.UniqueConstraint("tenant_id", "name", name="uq_red_team_specs_tenant_name"),
    )
    with op.batch_alter_table("red_team_specs", schema=None) as batch_op:
        batch_op.create_index(
            "ix_red_team_specs_tenant_created", ["tenant_id", "created_at", "id"], unique=False
        )

    op.create_table(
        "judge_evaluations",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("judge_id", sa.String(length=40), nullable=False),
        sa.Column("judge_version", sa.Integer(), nullable=False),
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("latency_ms", sa.Integer(), nullable=False),
        sa.Column("target", sa.JSON(), nullable=False),
        sa.Column("verdict", sa.JSON(), nullable=True),
        sa.Column("samples", sa.JSON(), nullable=True),
        sa.Column("rendered_text", sa.Text(), nullable=False),
        sa.Column("cost_usd", sa.Double(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["judge_id"], ["judges.id"], name=op.f("fk_judge_evaluations_judge_id_judges")
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_judge_evaluations_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_judge_evaluations")),
    )
    with op.batch_alter_table("judge_evaluations", schema=None) as batch_op:
        batch_op.create_index(
            "ix_judge_evaluations_judge_created", ["judge_id", "created_at", "id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_judge_evaluations_tenant_id"), ["tenant_id"], unique=False)

    op.create_table(
        "red_team_runs",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("spec_id", sa.String(length=40), nullable=False),
        sa.Column("model_name", sa.String(length=200), nullable=False),
        sa.Column("number_of_behaviors", sa.Integer(), nullable=False),
        sa.Column("number_of_prompts_per_behavior", sa.Integer(), nullable=False),
        sa.Column("target", sa.JSON(), nullable=False),
        sa.Column("job_id", sa.String(length=40), nullable=False),
        sa.Column("results", sa.JSON(), nullable=True),
        sa.Column("summary", sa.JSON(), nullable=True),
        sa.Column("created_by_email", sa.String(length=320), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("completed_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["spec_id"], ["red_team_specs.id"], name=op.f("fk_red_team_runs_spec_id_red_team_specs")
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_red_team_runs_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_red_team_runs")),
    )
    with op.batch_alter_table("red_team_runs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_red_team_runs_spec_id"), ["spec_id"], unique=False)
        batch_op.create_index(
            "ix_red_team_runs_tenant_created", ["tenant_id", "created_at", "id"], unique=False
        )


def downgrade() -> None:

    with op.batch_alter_table("red_team_runs", schema=None) as batch_op:
        batch_op.drop_index("ix_red_team_runs_tenant_created")
        batch_op.drop_index(batch_op.f("ix_red_team_runs_spec_id"))

    op.drop_table("red_team_runs")
    with op.batch_alter_table("judge_evaluations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_judge_evaluations_tenant_id"))
        batch_op.drop_index("ix_judge_evaluations_judge_created")

    op.drop_table("judge_evaluations")
    with op.batch_alter_table("red_team_specs", schema=None) as batch_op:
        batch_op.drop_index("ix_red_team_specs_tenant_created")

    op.drop_table("red_team_specs")
    with op.batch_alter_table("judges", schema=None) as batch_op:
        batch_op.drop_index("ix_judges_tenant_created")

    op.drop_table("judges")
