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

from datamill.store.ids import new_id
from datamill.store.models import Dataset, DatasetFile, utcnow

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


@dataclass(frozen=True)
class StoredFile:
    """A file already in the blob store (or about to be, at `blob_key`), as a dataset lists it."""

    file_name: str
    file_format: str
    blob_key: str
    size_bytes: int = 0
    sha256: str = ""


def add_dataset_with_file(
    session: Session,
    *,
    tenant_id: str,
    name: str,
    file: StoredFile,
    status: str,
    ingest_state: str,
    dataset_id: str | None = None,
    **columns: Any,
) -> Dataset:
    """A new uploaded dataset of `tenant_id` whose one file is `file`, added to `session` and flushed.

    `columns` sets other `Dataset` columns (`processing_mode` defaults to ``"adapt"``).
    """
    now = utcnow()
    columns.setdefault("processing_mode", "adapt")
    dataset = Dataset(
        id=dataset_id or new_id("ds"),
        tenant_id=tenant_id,
        name=name,
        kind="uploaded",
        status=status,
        ingest_state=ingest_state,
        created_at=now,
        updated_at=now,
        **columns,
    )
    session.add(dataset)
    session.flush()
    session.add(
        DatasetFile(
            dataset_id=dataset.id,
            position=0,
            file_name=file.file_name,
            file_format=file.file_format,
            blob_key=file.blob_key,
            size_bytes=file.size_bytes,
            sha256=file.sha256,
        )
    )
    return dataset


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
