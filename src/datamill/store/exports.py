"""Queries of dataset exports (`datamill.store.export_models`); each takes the caller's session."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from datamill.store.export_models import DatasetExport
from datamill.store.ids import new_id
from datamill.store.models import utcnow


def add_export(
    session: Session, tenant_id: str, dataset_id: str, target: str, location: str
) -> DatasetExport:
    """Record that the dataset was published to `location` through `target`."""
    row = DatasetExport(
        id=new_id("exp"),
        tenant_id=tenant_id,
        dataset_id=dataset_id,
        target=target,
        location=location,
        created_at=utcnow(),
    )
    session.add(row)
    return row


def list_exports(session: Session, tenant_id: str, dataset_id: str) -> list[DatasetExport]:
    """The dataset's exports, oldest first."""
    query = (
        select(DatasetExport)
        .where(DatasetExport.tenant_id == tenant_id, DatasetExport.dataset_id == dataset_id)
        .order_by(DatasetExport.created_at, DatasetExport.id)
    )
    return list(session.scalars(query))
