"""The schema of dataset exports: one row per successful publish of a dataset to an external target.

``GET /api/v1/datasets/{id}/export-links`` answers from these rows: the latest location per target.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from datamill.store.models import Base


class DatasetExport(Base):
    """A publish that succeeded: where a dataset's output went, and when."""

    __tablename__ = "dataset_exports"
    __table_args__ = (Index("ix_dataset_exports_tenant_dataset", "tenant_id", "dataset_id"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    dataset_id: Mapped[str] = mapped_column(ForeignKey("datasets.id"))
    target: Mapped[str] = mapped_column(String(32))
    location: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime]
