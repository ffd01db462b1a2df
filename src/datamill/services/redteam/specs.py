"""Red-team specs: an LLM application described for red teaming (create, list, read, PATCH, delete).

Create takes a `RedTeamSpecDraft`, an edit `RedTeamSpecChanges` (any subset of the fields). The name is
given in snake_case (`snake_case` makes it so) and must be unique
among the tenant's red-team specs (400 ``name_taken`` otherwise, never 409: the SDK would retry it).
Deleting a spec deletes its runs, cancelling those still going.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from datamill.services.errors import NotFoundError
from datamill.services.generation.common import NameTakenError, creator_email
from datamill.services.tenants import TenantView
from datamill.store import Store
from datamill.store.ids import new_id
from datamill.store.jobs import cancel_job
from datamill.store.models import utcnow
from datamill.store.red_team import (
    delete_red_team_runs,
    get_red_team_spec,
    list_red_team_runs,
    list_red_team_specs,
    red_team_spec_named,
)
from datamill.store.red_team_models import RedTeamSpec

_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_NOT_WORD = re.compile(r"[^0-9a-z]+")


def snake_case(name: str) -> str:
    """``"Support Bot v2"`` → ``support_bot_v2``, ``"SupportBot"`` → ``support_bot`` (empty if no letters)."""
    return _NOT_WORD.sub("_", _CAMEL.sub("_", name.strip()).lower()).strip("_")


@dataclass(frozen=True, kw_only=True)
class RedTeamSpecDraft:
    """A new red-team spec: the application and its domain described, optional concerns to probe."""

    name: str
    app_description: str
    domain_description: str
    concerns: str | None = None


@dataclass(frozen=True, kw_only=True)
class RedTeamSpecChanges:
    """An edit: the fields given (None: unchanged); `clear_concerns` removes the concerns."""

    name: str | None = None
    app_description: str | None = None
    domain_description: str | None = None
    concerns: str | None = None
    clear_concerns: bool = False

    def given(self) -> dict[str, str | None]:
        """The fields to set, by name."""
        values = {
            "name": self.name,
            "app_description": self.app_description,
            "domain_description": self.domain_description,
            "concerns": self.concerns,
        }
        changed: dict[str, str | None] = {k: v for k, v in values.items() if v is not None}
        if self.clear_concerns:
            changed["concerns"] = None
        return changed


@dataclass(frozen=True, kw_only=True)
class RedTeamSpecView:
    """A stored red-team spec."""

    id: str
    name: str
    app_description: str
    domain_description: str
    concerns: str | None
    created_at: dt.datetime
    updated_at: dt.datetime
    created_by_email: str


def spec_view(spec: RedTeamSpec) -> RedTeamSpecView:
    return RedTeamSpecView(
        id=spec.id,
        name=spec.name,
        app_description=spec.app_description,
        domain_description=spec.domain_description,
        concerns=spec.concerns,
        created_at=spec.created_at,
        updated_at=spec.updated_at,
        created_by_email=spec.created_by_email,
    )


def tenant_spec(session: Session, tenant_id: str, spec_id: str) -> RedTeamSpec:
    spec = get_red_team_spec(session, tenant_id, spec_id)
    if spec is None:
        raise NotFoundError("red-team spec", spec_id)
    return spec


class RedTeamSpecService:
    """The red-team spec operations of one tenant's requests; see the module docstring."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def create(self, tenant: TenantView, draft: RedTeamSpecDraft) -> RedTeamSpecView:
        try:
            with self._store.session() as session:
                if red_team_spec_named(session, tenant.id, draft.name) is not None:
                    raise NameTakenError("red-team spec", draft.name)
                now = utcnow()
                spec = RedTeamSpec(
                    id=new_id("rtspec"),
                    tenant_id=tenant.id,
                    name=draft.name,
                    app_description=draft.app_description,
                    domain_description=draft.domain_description,
                    concerns=draft.concerns,
                    created_by_email=creator_email(tenant),
                    created_at=now,
                    updated_at=now,
                )
                session.add(spec)
                session.flush()
                return spec_view(spec)
        except IntegrityError:  # a concurrent create took the name between the check and the insert
            raise NameTakenError("red-team spec", draft.name) from None

    def list(self, tenant_id: str) -> list[RedTeamSpecView]:
        with self._store.session() as session:
            return [spec_view(spec) for spec in list_red_team_specs(session, tenant_id)]

    def get(self, tenant_id: str, spec_id: str) -> RedTeamSpecView:
        with self._store.session() as session:
            return spec_view(tenant_spec(session, tenant_id, spec_id))

    def update(self, tenant_id: str, spec_id: str, changes: RedTeamSpecChanges) -> RedTeamSpecView:
        """Change the fields given; runs already created keep the descriptions they were created with."""
        fields = changes.given()
        try:
            with self._store.session() as session:
                spec = tenant_spec(session, tenant_id, spec_id)
                name = fields.get("name")
                taken = (
                    name is not None and name != spec.name and red_team_spec_named(session, tenant_id, name)
                )
                if taken:
                    raise NameTakenError("red-team spec", str(name))
                for key, value in fields.items():
                    setattr(spec, key, value)
                if fields:
                    spec.updated_at = utcnow()
                session.flush()
                return spec_view(spec)
        except IntegrityError:
            raise NameTakenError("red-team spec", str(fields.get("name"))) from None

    def delete(self, tenant_id: str, spec_id: str) -> None:
        """Delete the spec and its runs (a run still going is cancelled first)."""
        with self._store.session() as session:
            spec = tenant_spec(session, tenant_id, spec_id)
            runs = list_red_team_runs(session, tenant_id, spec.id)
            for run in runs:
                cancel_job(session, tenant_id, run.job_id)
            delete_red_team_runs(session, tenant_id, [run.id for run in runs])
            session.flush()
            session.delete(spec)
