"""Custom evaluations reserve credits when created and record what they were charged when they end.

Revision ID: 0010cc
Revises: 0009rj
Create Date: 2026-12-06 17:45:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010cc"
down_revision: str | None = "0009rj"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("custom_evals") as batch:
        batch.add_column(
            sa.Column(
                "credits_reserved", sa.Numeric(20, 6, asdecimal=False), nullable=False, server_default="0"
            )
        )
        batch.add_column(sa.Column("credits_used", sa.Numeric(20, 6, asdecimal=False), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("custom_evals") as batch:
        batch.drop_column("credits_used")
        batch.drop_column("credits_reserved")
