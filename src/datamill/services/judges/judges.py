"""Judges: a tenant's rubric, the model that grades with it and the dimensions it scores.

The Dataframer SDK reads judges (``judges.list``, ``judges.retrieve``); datamill adds the calls that define
them, on the same paths: ``POST /api/dataframer/judges/`` creates one, ``PATCH …/{judge_id}/`` changes it
(a change of rubric, model or dimensions makes the next ``version``) and ``DELETE`` removes it with its
evaluations.

A judge's fields: ``name`` (required, unique among the tenant's judges), ``description``, ``rubric``
(required: what a good answer is), ``model`` (any model name the server routes; the server's default
judge model when left out) and ``dimensions``, each
``{name, scoring_model: scale_1_5 | pass_fail, required, description}`` (one ``scale_1_5`` dimension
named ``overall`` when left out). The service takes a `JudgeDraft` or `JudgeChanges` and answers a
`JudgeView`; the server reads the bodies and writes the SDK's objects.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from datamill.core.fields import Issues, describe, join
from datamill.services.errors import NotFoundError
from datamill.services.generation.common import NameTakenError, creator_email
from datamill.services.judges.grader import Dimension
from datamill.services.tenants import TenantView
from datamill.store import Store
from datamill.store.ids import new_id
from datamill.store.judges import delete_judge, get_judge, judge_named, list_judges
from datamill.store.models import utcnow
from datamill.store.red_team_models import Judge

MAX_NAME = 200
MAX_RUBRIC = 20_000
MAX_DIMENSIONS = 12
MAX_PAGE = 100
#: The largest ``offset`` of a page (a larger one would not fit a database integer).
MAX_OFFSET = 2**31 - 1
DEFAULT_DIMENSION = {"name": "overall", "scoring_model": "scale_1_5", "required": True, "description": None}
T = TypeVar("T")


@dataclass(frozen=True, kw_only=True)
class DimensionDraft:
    """A dimension as given: new (`dimension_id` None) or one the judge has, by its id (kept)."""

    name: str
    scoring_model: str = "scale_1_5"
    required: bool = True
    description: str | None = None
    dimension_id: str | None = None


@dataclass(frozen=True, kw_only=True)
class JudgeDraft:
    """A new judge; without `dimensions`, one ``scale_1_5`` dimension named ``overall``."""

    name: str
    rubric: str
    description: str | None = None
    model: str | None = None
    dimensions: tuple[DimensionDraft, ...] | None = None


@dataclass(frozen=True, kw_only=True)
class JudgeChanges:
    """An edit: the fields given (None: unchanged)."""

    name: str | None = None
    description: str | None = None
    rubric: str | None = None
    model: str | None = None
    dimensions: tuple[DimensionDraft, ...] | None = None


@dataclass(frozen=True, kw_only=True)
class JudgeView:
    """A judge: its rubric, the model it grades with, its dimensions and its version.

    `model` is the server's default judge model when the judge names none; `version` is one more for each
    change of rubric, model or dimensions.
    """

    id: str
    name: str
    description: str | None
    rubric: str
    model: str | None
    version: int
    dimensions: tuple[Dimension, ...]
    created_at: dt.datetime
    updated_at: dt.datetime


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a listing and how many there are in all."""

    count: int
    items: tuple[T, ...]


def _stored_dimensions(drafts: Sequence[DimensionDraft], existing: Sequence[Any]) -> list[dict[str, Any]]:
    """The dimensions to store: one given with an existing ``dimension_id`` keeps it, others get new ids."""
    known = {d.get("dimension_id") for d in existing}
    issues = Issues()
    for index, draft in enumerate(drafts):
        if draft.dimension_id is not None and draft.dimension_id not in known:
            issues.add(
                join(join("dimensions", index), "dimension_id"),
                f"is not a dimension of this judge: {describe(draft.dimension_id)}",
            )
    issues.raise_if_any()
    return [
        {
            "dimension_id": d.dimension_id if d.dimension_id in known else new_id("dim"),
            "name": d.name,
            "scoring_model": d.scoring_model,
            "required": d.required,
            "description": d.description,
        }
        for d in drafts
    ]


def dimensions_of(rows: list[Any]) -> list[Dimension]:
    """The `Dimension`s of a judge's stored dimension rows."""
    return [
        Dimension(d["dimension_id"], d["name"], d["scoring_model"], bool(d["required"]), d.get("description"))
        for d in rows
    ]


def judge_view(judge: Judge, default_model: str | None) -> JudgeView:
    return JudgeView(
        id=judge.id,
        name=judge.name,
        description=judge.description,
        rubric=judge.rubric,
        model=judge.model or default_model,
        version=judge.version,
        dimensions=tuple(dimensions_of(list(judge.dimensions))),
        created_at=judge.created_at,
        updated_at=judge.updated_at,
    )


def tenant_judge(session: Session, tenant_id: str, judge_id: str) -> Judge:
    judge = get_judge(session, tenant_id, judge_id)
    if judge is None:
        raise NotFoundError("judge", judge_id)
    return judge


def page(limit: int | None, offset: int | None) -> tuple[int, int]:
    """A validated ``limit`` (1–100, default 20) and ``offset`` (0 to `MAX_OFFSET`)."""
    issues = Issues()
    size = 20 if limit is None else limit
    start = 0 if offset is None else offset
    if not 1 <= size <= MAX_PAGE:
        issues.add("limit", f"must be from 1 to {MAX_PAGE}, got {size}")
    if not 0 <= start <= MAX_OFFSET:
        issues.add("offset", f"must be from 0 to {MAX_OFFSET}, got {start}")
    issues.raise_if_any()
    return size, start


class JudgeService:
    """The judge operations of one tenant's requests; see the module docstring.

    Args:
        store: the metadata database.
        default_model: the model a judge that names none grades with (shown as its model).
    """

    def __init__(self, store: Store, default_model: str | None) -> None:
        self._store, self._default = store, default_model

    def create(self, tenant: TenantView, draft: JudgeDraft) -> JudgeView:
        dimensions = _stored_dimensions(draft.dimensions or (), [])
        try:
            with self._store.session() as session:
                if judge_named(session, tenant.id, draft.name) is not None:
                    raise NameTakenError("judge", draft.name)
                now = utcnow()
                judge = Judge(
                    id=new_id("judge"),
                    tenant_id=tenant.id,
                    name=draft.name,
                    description=draft.description,
                    rubric=draft.rubric,
                    model=draft.model or "",
                    dimensions=dimensions or [DEFAULT_DIMENSION | {"dimension_id": new_id("dim")}],
                    version=1,
                    created_by_email=creator_email(tenant),
                    created_at=now,
                    updated_at=now,
                )
                session.add(judge)
                session.flush()
                return judge_view(judge, self._default)
        except IntegrityError:
            raise NameTakenError("judge", draft.name) from None

    def list(
        self, tenant_id: str, limit: int | None, offset: int | None, project_id: str | None
    ) -> Page[JudgeView]:
        """A page of judges; judges belong to no project, so a ``project_id`` filter matches none."""
        size, start = page(limit, offset)
        if project_id is not None:
            return Page(0, ())
        with self._store.session() as session:
            count, judges = list_judges(session, tenant_id, size, start)
            return Page(count, tuple(judge_view(j, self._default) for j in judges))

    def get(self, tenant_id: str, judge_id: str) -> JudgeView:
        with self._store.session() as session:
            return judge_view(tenant_judge(session, tenant_id, judge_id), self._default)

    def update(self, tenant_id: str, judge_id: str, changes: JudgeChanges) -> JudgeView:
        """Change the fields given; a change of rubric, model or dimensions is the judge's next version."""
        try:
            with self._store.session() as session:
                judge = tenant_judge(session, tenant_id, judge_id)
                fields: dict[str, Any] = {
                    "name": changes.name,
                    "description": changes.description,
                    "rubric": changes.rubric,
                    "model": changes.model,
                }
                if changes.dimensions is not None:
                    fields["dimensions"] = _stored_dimensions(changes.dimensions, list(judge.dimensions))
                name = fields.get("name")
                other = judge_named(session, tenant_id, name) if name else None
                if other is not None and other.id != judge.id:
                    raise NameTakenError("judge", str(name))
                graded = {"rubric", "model", "dimensions"}
                changed = {k for k, v in fields.items() if v is not None and getattr(judge, k) != v}
                for key in changed:
                    setattr(judge, key, fields[key])
                if changed & graded:
                    judge.version += 1
                if changed:
                    judge.updated_at = utcnow()
                session.flush()
                return judge_view(judge, self._default)
        except IntegrityError:
            raise NameTakenError("judge", str(changes.name)) from None

    def delete(self, tenant_id: str, judge_id: str) -> None:
        with self._store.session() as session:
            delete_judge(session, tenant_judge(session, tenant_id, judge_id))
