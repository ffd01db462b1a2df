"""Repository of generation specs and their versions; every query is scoped by tenant.

Versions count from 1 (the analysis job writes it) and are never changed; an edit adds the next one. The
latest version is the spec's current YAML.
"""

from __future__ import annotations

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from datamill.store.generation_models import GenerationRun, SeedDataset, Spec, SpecVersion
from datamill.store.ids import new_id
from datamill.store.models import utcnow


def get_spec(session: Session, tenant_id: str, spec_id: str) -> Spec | None:
    """The tenant's spec `spec_id`, or None (another tenant's id reads as absent)."""
    return session.scalar(select(Spec).where(Spec.id == spec_id, Spec.tenant_id == tenant_id))


def get_spec_any_tenant(session: Session, spec_id: str) -> Spec | None:
    """For a job's executor, which has only the id; never for answering a tenant's request."""
    return session.get(Spec, spec_id)


def spec_name_taken(session: Session, tenant_id: str, name: str) -> bool:
    found = session.scalar(select(Spec.id).where(Spec.tenant_id == tenant_id, Spec.name == name))
    return found is not None


def list_specs(session: Session, tenant_id: str) -> list[Spec]:
    """The tenant's specs, newest first."""
    query = select(Spec).where(Spec.tenant_id == tenant_id).order_by(Spec.created_at.desc(), Spec.id.desc())
    return list(session.scalars(query))


def versions_of(session: Session, spec_id: str) -> list[SpecVersion]:
    """The spec's versions, oldest first."""
    query = select(SpecVersion).where(SpecVersion.spec_id == spec_id).order_by(SpecVersion.version)
    return list(session.scalars(query))


def latest_version(session: Session, spec_id: str) -> SpecVersion | None:
    query = (
        select(SpecVersion)
        .where(SpecVersion.spec_id == spec_id)
        .order_by(SpecVersion.version.desc())
        .limit(1)
    )
    return session.scalar(query)


def get_version(session: Session, spec_id: str, version: int) -> SpecVersion | None:
    query = select(SpecVersion).where(SpecVersion.spec_id == spec_id, SpecVersion.version == version)
    return session.scalar(query)


def add_version(session: Session, spec: Spec, content_yaml: str) -> SpecVersion:
    """Append the next version of `spec` and touch its ``updated_at``."""
    current = session.scalar(select(func.max(SpecVersion.version)).where(SpecVersion.spec_id == spec.id))
    now = utcnow()
    row = SpecVersion(
        id=new_id("specv"),
        spec_id=spec.id,
        version=(current or 0) + 1,
        content_yaml=content_yaml,
        created_at=now,
    )
    session.add(row)
    spec.updated_at = now
    session.flush()
    return row


def run_ids_of(session: Session, spec_id: str) -> list[str]:
    """Ids of the generation runs made from the spec."""
    return list(session.scalars(select(GenerationRun.id).where(GenerationRun.spec_id == spec_id)))


def delete_spec(session: Session, spec: Spec) -> None:
    """Delete the spec and its versions (its runs must be deleted first)."""
    session.execute(delete(SpecVersion).where(SpecVersion.spec_id == spec.id))
    session.delete(spec)
    session.flush()


def get_seed_dataset(session: Session, tenant_id: str, dataset_id: str) -> SeedDataset | None:
    """The tenant's seed dataset `dataset_id`, or None."""
    return session.scalar(
        select(SeedDataset).where(SeedDataset.id == dataset_id, SeedDataset.tenant_id == tenant_id)
    )
