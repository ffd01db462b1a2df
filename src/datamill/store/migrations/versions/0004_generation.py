"""Generation: seed datasets and files, specs and versions, generation runs, their files and evaluations.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22 10:47:04.414684
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table(
        "seed_datasets",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=512), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("dataset_type", sa.String(length=16), nullable=False),
        sa.Column("file_count", sa.Integer(), nullable=False),
        sa.Column("folder_count", sa.Integer(), nullable=False),
        sa.Column("sample_count", sa.BigInteger(), nullable=True),
        sa.Column("created_by_email", sa.String(length=320), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_seed_datasets_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_seed_datasets")),
        sa.UniqueConstraint("tenant_id", "name", name="uq_seed_datasets_tenant_name"),
    )
    with op.batch_alter_table("seed_datasets", schema=None) as batch_op:
        batch_op.create_index(
            "ix_seed_datasets_tenant_created", ["tenant_id", "created_at", "id"], unique=False
        )

    op.create_table(
        "seed_files",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("dataset_id", sa.String(length=40), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("path", sa.String(length=1024), nullable=False),
        sa.Column("folder", sa.String(length=512), nullable=True),
        sa.Column("file_type", sa.String(length=100), nullable=False),
        sa.Column("blob_key", sa.String(length=1024), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["dataset_id"], ["seed_datasets.id"], name=op.f("fk_seed_files_dataset_id_seed_datasets")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_seed_files")),
    )
    with op.batch_alter_table("seed_files", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_seed_files_dataset_id"), ["dataset_id"], unique=False)

    op.create_table(
        "specs",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=512), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("dataset_id", sa.String(length=40), nullable=True),
        sa.Column("dataset_type", sa.String(length=16), nullable=False),
        sa.Column("generation_objectives", sa.Text(), nullable=True),
        sa.Column("runtime_params", sa.JSON(), nullable=False),
        sa.Column("job_id", sa.String(length=40), nullable=True),
        sa.Column("created_by_email", sa.String(length=320), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["dataset_id"], ["seed_datasets.id"], name=op.f("fk_specs_dataset_id_seed_datasets")
        ),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f("fk_specs_tenant_id_tenants")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_specs")),
        sa.UniqueConstraint("tenant_id", "name", name="uq_specs_tenant_name"),
    )
    with op.batch_alter_table("specs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_specs_dataset_id"), ["dataset_id"], unique=False)
        batch_op.create_index("ix_specs_tenant_created", ["tenant_id", "created_at", "id"], unique=False)

    op.create_table(
        "generation_runs",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("spec_id", sa.String(length=40), nullable=False),
        sa.Column("spec_version", sa.Integer(), nullable=False),
        sa.Column("number_of_samples", sa.Integer(), nullable=False),
        sa.Column("request", sa.JSON(), nullable=False),
        sa.Column("runtime_params", sa.JSON(), nullable=False),
        sa.Column("job_id", sa.String(length=40), nullable=False),
        sa.Column("summary", sa.JSON(), nullable=True),
        sa.Column("zip_job_id", sa.String(length=40), nullable=True),
        sa.Column("created_by_email", sa.String(length=320), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("completed_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["spec_id"], ["specs.id"], name=op.f("fk_generation_runs_spec_id_specs")),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_generation_runs_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_generation_runs")),
    )
    with op.batch_alter_table("generation_runs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_generation_runs_spec_id"), ["spec_id"], unique=False)
        batch_op.create_index(
            "ix_generation_runs_tenant_created", ["tenant_id", "created_at", "id"], unique=False
        )

    op.create_table(
        "spec_versions",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("spec_id", sa.String(length=40), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("content_yaml", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["spec_id"], ["specs.id"], name=op.f("fk_spec_versions_spec_id_specs")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_spec_versions")),
        sa.UniqueConstraint("spec_id", "version", name="uq_spec_versions_spec_version"),
    )
    with op.batch_alter_table("spec_versions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_spec_versions_spec_id"), ["spec_id"], unique=False)

    op.create_table(
        "generated_files",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("run_id", sa.String(length=40), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("path", sa.String(length=1024), nullable=False),
        sa.Column("file_type", sa.String(length=100), nullable=False),
        sa.Column("blob_key", sa.String(length=1024), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"], ["generation_runs.id"], name=op.f("fk_generated_files_run_id_generation_runs")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_generated_files")),
    )
    with op.batch_alter_table("generated_files", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_generated_files_run_id"), ["run_id"], unique=False)

    op.create_table(
        "generation_evaluations",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("run_id", sa.String(length=40), nullable=False),
        sa.Column("evaluation_model", sa.String(length=200), nullable=True),
        sa.Column("job_id", sa.String(length=40), nullable=False),
        sa.Column("result", sa.JSON(), nullable=True),
        sa.Column("created_by_email", sa.String(length=320), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("completed_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["run_id"], ["generation_runs.id"], name=op.f("fk_generation_evaluations_run_id_generation_runs")
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_generation_evaluations_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_generation_evaluations")),
    )
    with op.batch_alter_table("generation_evaluations", schema=None) as batch_op:
        batch_op.create_index(
            "ix_generation_evaluations_run_created", ["run_id", "created_at", "id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_generation_evaluations_tenant_id"), ["tenant_id"], unique=False)

    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.alter_column("dataset_id", existing_type=sa.VARCHAR(length=40), nullable=True)


def downgrade() -> None:

    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.alter_column("dataset_id", existing_type=sa.VARCHAR(length=40), nullable=False)

    with op.batch_alter_table("generation_evaluations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_generation_evaluations_tenant_id"))
        batch_op.drop_index("ix_generation_evaluations_run_created")

    op.drop_table("generation_evaluations")
    with op.batch_alter_table("generated_files", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_generated_files_run_id"))

    op.drop_table("generated_files")
    with op.batch_alter_table("spec_versions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_spec_versions_spec_id"))

    op.drop_table("spec_versions")
    with op.batch_alter_table("generation_runs", schema=None) as batch_op:
        batch_op.drop_index("ix_generation_runs_tenant_created")
        batch_op.drop_index(batch_op.f("ix_generation_runs_spec_id"))

    op.drop_table("generation_runs")
    with op.batch_alter_table("specs", schema=None) as batch_op:
        batch_op.drop_index("ix_specs_tenant_created")
        batch_op.drop_index(batch_op.f("ix_specs_dataset_id"))

    op.drop_table("specs")
    with op.batch_alter_table("seed_files", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_seed_files_dataset_id"))

    op.drop_table("seed_files")
    with op.batch_alter_table("seed_datasets", schema=None) as batch_op:
        batch_op.drop_index("ix_seed_datasets_tenant_created")

    op.drop_table("seed_datasets")
