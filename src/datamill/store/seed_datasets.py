"""Repository of seed datasets and their files. Functions take the caller's session (one transaction).

Every query of a dataset filters on the tenant, so another tenant's id reads as absent.
"""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from datamill.store.generation_models import SeedDataset, SeedFile, Spec


def add_dataset(session: Session, dataset: SeedDataset, files: list[SeedFile]) -> None:
    """Insert a dataset and its files (flushed, so a name already taken fails here)."""
    session.add(dataset)
    session.flush()
    session.add_all(files)
    session.flush()


def name_taken(session: Session, tenant_id: str, name: str) -> bool:
    found = session.scalar(
        select(SeedDataset.id).where(SeedDataset.tenant_id == tenant_id, SeedDataset.name == name)
    )
    return found is not None


def list_datasets(session: Session, tenant_id: str) -> list[SeedDataset]:
    """The tenant's datasets, newest first."""
    query = (
        select(SeedDataset)
        .where(SeedDataset.tenant_id == tenant_id)
        .order_by(SeedDataset.created_at.desc(), SeedDataset.id.desc())
    )
    return list(session.scalars(query))


def get_dataset(session: Session, tenant_id: str, dataset_id: str) -> SeedDataset | None:
    return session.scalar(
        select(SeedDataset).where(SeedDataset.id == dataset_id, SeedDataset.tenant_id == tenant_id)
    )


def files_of(session: Session, dataset_id: str) -> list[SeedFile]:
    """A dataset's files in upload order."""
    query = select(SeedFile).where(SeedFile.dataset_id == dataset_id).order_by(SeedFile.position)
    return list(session.scalars(query))


def get_file(session: Session, dataset_id: str, file_id: str) -> SeedFile | None:
    return session.scalar(select(SeedFile).where(SeedFile.id == file_id, SeedFile.dataset_id == dataset_id))


def spec_names_using(session: Session, dataset_id: str) -> list[str]:
    """The names of the specs written from the dataset."""
    return list(session.scalars(select(Spec.name).where(Spec.dataset_id == dataset_id).order_by(Spec.name)))


def delete_dataset(session: Session, dataset: SeedDataset) -> None:
    """Delete a dataset's rows (its files first)."""
    session.execute(delete(SeedFile).where(SeedFile.dataset_id == dataset.id))
    session.delete(dataset)
    session.flush()
