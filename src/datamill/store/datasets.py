"""Repository of datasets and their files, with keyset pagination for listings.

Every lookup is scoped by tenant and skips soft-deleted rows, so a dataset of another tenant and a deleted one
look the same to callers: absent.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import ColumnElement, and_, or_, select
from sqlalchemy.orm import Session

from datamill.store.models import Dataset, DatasetFile

SortKey = Literal["created_at", "updated_at", "name"]


@dataclass(frozen=True)
class DatasetFilter:
    """Which datasets a listing shows; empty tuples and None mean "no filter"."""

    tenant_id: str
    statuses: tuple[str, ...] = ()
    kinds: tuple[str, ...] = ()
    text: str | None = None
    created_after: dt.datetime | None = None
    created_before: dt.datetime | None = None


@dataclass(frozen=True)
class Keyset:
    """The order of a listing and where a page starts: after the item whose (sort value, id) is `after`."""

    sort: SortKey = "created_at"
    descending: bool = True
    after: tuple[Any, str] | None = None


def get_dataset(
    session: Session, tenant_id: str, dataset_id: str, *, for_update: bool = False
) -> Dataset | None:
    stmt = select(Dataset).where(
        Dataset.id == dataset_id, Dataset.tenant_id == tenant_id, Dataset.deleted_at.is_(None)
    )
    if for_update:
        stmt = stmt.with_for_update()
    return session.scalar(stmt)


def get_dataset_any_tenant(session: Session, dataset_id: str) -> Dataset | None:
    """For background work that has only the id (ingest); never for answering a tenant's request."""
    return session.get(Dataset, dataset_id)


def tenant_of_dataset(session: Session, dataset_id: str) -> str | None:
    """The tenant of a dataset not deleted (None when it is gone): for scheduling background work fairly."""
    stmt = select(Dataset.tenant_id).where(Dataset.id == dataset_id, Dataset.deleted_at.is_(None))
    found = session.execute(stmt).scalar_one_or_none()
    return None if found is None else str(found)


def _conditions(filt: DatasetFilter) -> list[ColumnElement[bool]]:
    conds: list[ColumnElement[bool]] = [Dataset.tenant_id == filt.tenant_id, Dataset.deleted_at.is_(None)]
    if filt.statuses:
        conds.append(Dataset.status.in_(filt.statuses))
    if filt.kinds:
        conds.append(Dataset.kind.in_(filt.kinds))
    if filt.text:
        needle = filt.text.lower()
        conds.append(
            or_(
                Dataset.name.ilike(f"%{_escape(needle)}%", escape="\\"),
                Dataset.description.ilike(f"%{_escape(needle)}%", escape="\\"),
            )
        )
    if filt.created_after is not None:
        conds.append(Dataset.created_at > filt.created_after)
    if filt.created_before is not None:
        conds.append(Dataset.created_at < filt.created_before)
    return conds


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def page_datasets(session: Session, filt: DatasetFilter, keyset: Keyset, limit: int) -> list[Dataset]:
    """Up to `limit` datasets in keyset order, starting after `keyset.after`; the id breaks ties."""
    column = getattr(Dataset, keyset.sort)
    conds = _conditions(filt)
    if keyset.after is not None:
        value, last_id = keyset.after
        if keyset.descending:
            conds.append(or_(column < value, and_(column == value, Dataset.id < last_id)))
        else:
            conds.append(or_(column > value, and_(column == value, Dataset.id > last_id)))
    order = (column.desc(), Dataset.id.desc()) if keyset.descending else (column.asc(), Dataset.id.asc())
    return list(session.scalars(select(Dataset).where(*conds).order_by(*order).limit(limit)))


def dataset_ids_in_ingest_state(session: Session, state: str) -> list[str]:
    stmt = select(Dataset.id).where(Dataset.ingest_state == state, Dataset.deleted_at.is_(None))
    return list(session.scalars(stmt.order_by(Dataset.updated_at)))


def files_of(session: Session, dataset_id: str) -> list[DatasetFile]:
    stmt = select(DatasetFile).where(DatasetFile.dataset_id == dataset_id).order_by(DatasetFile.position)
    return list(session.scalars(stmt))
