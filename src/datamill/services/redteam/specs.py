"""Red-team specs: an LLM application described for red teaming (create, list, read, PATCH, delete).

Create takes ``name``, ``app_description`` and ``domain_description`` (all required) and optional
``concerns``; PATCH any subset of them. ``name`` is stored in snake_case (`snake_case`) and must be unique
among the tenant's red-team specs (400 ``name_taken`` otherwise, never 409: the SDK would retry it).
Deleting a spec deletes its runs, cancelling those still going.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from datamill.core.fields import Issues, read_object, read_str
from datamill.services.errors import NotFoundError
from datamill.services.generation.common import NameTakenError, creator_email, iso
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

FIELDS = ("name", "app_description", "domain_description", "concerns")
REQUIRED = ("name", "app_description", "domain_description")
MAX_NAME = 200
MAX_TEXT = 20_000

_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_NOT_WORD = re.compile(r"[^0-9a-z]+")


def snake_case(name: str) -> str:
    """``"Support Bot v2"`` → ``support_bot_v2``, ``"SupportBot"`` → ``support_bot`` (empty if no letters)."""
    return _NOT_WORD.sub("_", _CAMEL.sub("_", name.strip()).lower()).strip("_")


def parse_spec_fields(body: object, *, partial: bool) -> dict[str, Any]:
    """The validated fields of a create (`partial` False: the required ones present) or a PATCH."""
    issues = Issues()
    values: Mapping[str, object] = read_object(body, "", FIELDS, issues) or {}
    out: dict[str, Any] = {}
    for key in FIELDS:
        if key not in values:
            if not partial and key in REQUIRED:
                issues.add(key, "is required")
            continue
        if values[key] is None and key == "concerns":
            out[key] = None
            continue
        if values[key] is None:
            issues.add(key, "must be a non-empty string, got null")
            continue
        text = read_str(values[key], key, issues, max_length=MAX_NAME if key == "name" else MAX_TEXT)
        if text is None:
            continue
        if key == "name":
            text = snake_case(text)
            if not text:
                issues.add("name", "must contain letters or digits")
                continue
        out[key] = text
    issues.raise_if_any()
    return out


def spec_wire(spec: RedTeamSpec) -> dict[str, Any]:
    """The spec object of create, retrieve and update."""
    return spec_list_item(spec) | {"concerns": spec.concerns, "created_by": None}


def spec_list_item(spec: RedTeamSpec) -> dict[str, Any]:
    """The list's items: without ``concerns`` and ``created_by``."""
    return {
        "id": spec.id,
        "name": spec.name,
        "app_description": spec.app_description,
        "domain_description": spec.domain_description,
        "created_at": iso(spec.created_at),
        "updated_at": iso(spec.updated_at),
        "created_by_email": spec.created_by_email,
    }


def tenant_spec(session: Session, tenant_id: str, spec_id: str) -> RedTeamSpec:
    spec = get_red_team_spec(session, tenant_id, spec_id)
    if spec is None:
        raise NotFoundError("red-team spec", spec_id)
    return spec


class RedTeamSpecService:
    """The red-team spec operations of one tenant's requests; see the module docstring."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def create(self, tenant: TenantView, body: object) -> dict[str, Any]:
        fields = parse_spec_fields(body, partial=False)
        try:
            with self._store.session() as session:
                if red_team_spec_named(session, tenant.id, fields["name"]) is not None:
                    raise NameTakenError("red-team spec", fields["name"])
                now = utcnow()
                spec = RedTeamSpec(
                    id=new_id("rtspec"),
                    tenant_id=tenant.id,
                    name=fields["name"],
                    app_description=fields["app_description"],
                    domain_description=fields["domain_description"],
                    concerns=fields.get("concerns"),
                    created_by_email=creator_email(tenant),
                    created_at=now,
                    updated_at=now,
                )
                session.add(spec)
                session.flush()
                return spec_wire(spec)
        except IntegrityError:  # a concurrent create took the name between the check and the insert
            raise NameTakenError("red-team spec", fields["name"]) from None

    def list(self, tenant_id: str) -> list[dict[str, Any]]:
        with self._store.session() as session:
            return [spec_list_item(spec) for spec in list_red_team_specs(session, tenant_id)]

    def get(self, tenant_id: str, spec_id: str) -> dict[str, Any]:
        with self._store.session() as session:
            return spec_wire(tenant_spec(session, tenant_id, spec_id))

    def update(self, tenant_id: str, spec_id: str, body: object) -> dict[str, Any]:
        """Change the fields sent; runs already created keep the descriptions they were created with."""
        fields = parse_spec_fields(body, partial=True)
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
                return spec_wire(spec)
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
