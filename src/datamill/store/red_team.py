"""Repository of red-team specs and runs; every query is scoped by tenant (except the executor's)."""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from datamill.store.red_team_models import RedTeamRun, RedTeamSpec


def get_red_team_spec(session: Session, tenant_id: str, spec_id: str) -> RedTeamSpec | None:
    """The tenant's spec `spec_id`, or None (another tenant's id reads as absent)."""
    query = select(RedTeamSpec).where(RedTeamSpec.id == spec_id, RedTeamSpec.tenant_id == tenant_id)
    return session.scalar(query)


def red_team_spec_named(session: Session, tenant_id: str, name: str) -> RedTeamSpec | None:
    query = select(RedTeamSpec).where(RedTeamSpec.tenant_id == tenant_id, RedTeamSpec.name == name)
    return session.scalar(query)


def list_red_team_specs(session: Session, tenant_id: str) -> list[RedTeamSpec]:
    """The tenant's specs, newest first."""
    query = (
        select(RedTeamSpec)
        .where(RedTeamSpec.tenant_id == tenant_id)
        .order_by(RedTeamSpec.created_at.desc(), RedTeamSpec.id.desc())
    )
    return list(session.scalars(query))


def get_red_team_run(session: Session, tenant_id: str, run_id: str) -> RedTeamRun | None:
    """The tenant's run `run_id`, or None."""
    query = select(RedTeamRun).where(RedTeamRun.id == run_id, RedTeamRun.tenant_id == tenant_id)
    return session.scalar(query)


def get_red_team_run_any_tenant(session: Session, run_id: str) -> RedTeamRun | None:
    """For a job's executor, which has only the id; never for answering a tenant's request."""
    return session.get(RedTeamRun, run_id)


def list_red_team_runs(session: Session, tenant_id: str, spec_id: str | None = None) -> list[RedTeamRun]:
    """The tenant's runs (of one spec when `spec_id` is given), newest first."""
    query = select(RedTeamRun).where(RedTeamRun.tenant_id == tenant_id)
    if spec_id is not None:
        query = query.where(RedTeamRun.spec_id == spec_id)
    return list(session.scalars(query.order_by(RedTeamRun.created_at.desc(), RedTeamRun.id.desc())))


def delete_red_team_runs(session: Session, tenant_id: str, run_ids: list[str]) -> None:
    if run_ids:
        session.execute(
            delete(RedTeamRun).where(RedTeamRun.tenant_id == tenant_id, RedTeamRun.id.in_(run_ids))
        )
