"""Concurrency budget: slots of a provider's limit shared by every worker.

Revision ID: 0005cb
Revises: 0004
Create Date: 2026-11-22 11:10:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005cb"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "concurrency_budgets",
        sa.Column("key", sa.String(length=400), nullable=False),
        sa.Column("slot_limit", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_concurrency_budgets")),
    )
    op.create_table(
        "concurrency_slots",
        sa.Column("key", sa.String(length=400), nullable=False),
        sa.Column("holder", sa.String(length=200), nullable=False),
        sa.Column("slots", sa.Integer(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("key", "holder", name=op.f("pk_concurrency_slots")),
    )


def downgrade() -> None:
    op.drop_table("concurrency_slots")
    op.drop_table("concurrency_budgets")
