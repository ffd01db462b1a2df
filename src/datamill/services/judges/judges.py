"""Judges: a tenant's rubric, the model that grades with it and the dimensions it scores.

The Dataframer SDK reads judges (``judges.list``, ``judges.retrieve``); datamill adds the calls that define
them, on the same paths: ``POST /api/dataframer/judges/`` creates one, ``PATCH …/{judge_id}/`` changes it
(a change of rubric, model or dimensions makes the next ``version``) and ``DELETE`` removes it with its
evaluations.

A judge's fields: ``name`` (required, unique among the tenant's judges), ``description``, ``rubric``
(required: what a good answer is), ``model`` (any model name the server routes; the server's default
judge model when left out) and ``dimensions``, each
``{name, scoring_model: scale_1_5 | pass_fail, required, description}`` (one ``scale_1_5`` dimension
named ``overall`` when left out). The wire object is the SDK's
``{id, name, description, project_id, created_at, latest_version{version_number, model, created_at,
dimensions[{dimension_id, name, required, scoring_model}]}}`` plus ``rubric``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from datamill.core.fields import Issues, describe, join, read_bool, read_list, read_object, read_str
from datamill.services.errors import NotFoundError
from datamill.services.generation.common import NameTakenError, creator_email, iso
from datamill.services.judges.grader import SCORING_MODELS, Dimension
from datamill.services.tenants import TenantView
from datamill.store import Store
from datamill.store.ids import new_id
from datamill.store.judges import delete_judge, get_judge, judge_named, list_judges
from datamill.store.models import utcnow
from datamill.store.red_team_models import Judge

FIELDS = ("name", "description", "rubric", "model", "dimensions")
DIMENSION_FIELDS = ("dimension_id", "name", "scoring_model", "required", "description")
MAX_NAME = 200
MAX_RUBRIC = 20_000
MAX_DIMENSIONS = 12
MAX_PAGE = 100
#: The largest ``offset`` of a page (a larger one would not fit a database integer).
MAX_OFFSET = 2**31 - 1
DEFAULT_DIMENSION = {"name": "overall", "scoring_model": "scale_1_5", "required": True, "description": None}
_DIMENSION_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.-]{0,63}$")


def _dimensions(value: object, issues: Issues, existing: list[Any]) -> list[dict[str, Any]] | None:
    """The validated dimensions; one given with an existing ``dimension_id`` keeps it, others get new ids."""
    items = read_list(value, "dimensions", issues)
    if items is None:
        return None
    if not 1 <= len(items) <= MAX_DIMENSIONS:
        issues.add("dimensions", f"must hold 1 to {MAX_DIMENSIONS} dimensions, got {len(items)}")
        return None
    known = {d.get("dimension_id") for d in existing}
    out: list[dict[str, Any]] = []
    for index, item in enumerate(items):
        field = join("dimensions", index)
        values = read_object(item, field, DIMENSION_FIELDS, issues)
        if values is None:
            continue
        name = read_str(values.get("name"), join(field, "name"), issues)
        if values.get("name") is None:
            issues.add(join(field, "name"), "is required")
        elif name is not None and not _DIMENSION_NAME.match(name):
            issues.add(join(field, "name"), "must be 1-64 letters, digits, spaces, '_', '.' or '-'")
            name = None
        scoring = values.get("scoring_model", "scale_1_5")
        if scoring not in SCORING_MODELS:
            issues.add(
                join(field, "scoring_model"),
                f"must be one of {', '.join(SCORING_MODELS)}; got {describe(scoring)}",
            )
        required = read_bool(values.get("required"), join(field, "required"), issues)
        about = read_str(values.get("description"), join(field, "description"), issues, max_length=2000)
        given_id = values.get("dimension_id")
        if given_id is not None and given_id not in known:
            issues.add(join(field, "dimension_id"), f"is not a dimension of this judge: {describe(given_id)}")
        if name is not None and any(d["name"] == name for d in out):
            issues.add(join(field, "name"), f"repeats the dimension {name!r}")
        out.append(
            {
                "dimension_id": given_id if given_id in known else new_id("dim"),
                "name": name,
                "scoring_model": scoring,
                "required": required is not False,
                "description": about,
            }
        )
    return out


def parse_judge(
    body: object,
    *,
    partial: bool,
    existing: list[Any] | None = None,
    check_model: Callable[[str], str | None] = lambda _name: None,
) -> dict[str, Any]:
    """The validated fields of a create (`partial` False) or a PATCH.

    `check_model` says why a model name is refused (None: it is routed).
    """
    issues = Issues()
    values: Mapping[str, object] = read_object(body, "", FIELDS, issues) or {}
    out: dict[str, Any] = {}
    if not partial:
        for key in ("name", "rubric"):
            if values.get(key) is None:
                issues.add(key, "is required")
    limits = {"name": MAX_NAME, "description": 2000, "rubric": MAX_RUBRIC, "model": 200}
    for key, limit in limits.items():
        if key in values:
            out[key] = read_str(values[key], key, issues, max_length=limit)
            if out[key] is None and key in ("name", "rubric") and values[key] is None:
                issues.add(key, "must be a non-empty string, got null")
    if out.get("model") is not None and (why := check_model(out["model"])) is not None:
        issues.add("model", why)
    if values.get("dimensions") is not None:
        out["dimensions"] = _dimensions(values["dimensions"], issues, existing or [])
    issues.raise_if_any()
    return out


def dimensions_of(rows: list[Any]) -> list[Dimension]:
    """The `Dimension`s of a judge's stored dimension rows."""
    return [
        Dimension(d["dimension_id"], d["name"], d["scoring_model"], bool(d["required"]), d.get("description"))
        for d in rows
    ]


def judge_wire(judge: Judge, default_model: str | None) -> dict[str, Any]:
    """The SDK's judge object, plus ``rubric`` (the model is the default one when the judge names none)."""
    return {
        "id": judge.id,
        "name": judge.name,
        "description": judge.description,
        "project_id": None,
        "created_at": iso(judge.created_at),
        "rubric": judge.rubric,
        "latest_version": {
            "version_number": judge.version,
            "model": judge.model or default_model,
            "created_at": iso(judge.updated_at),
            "dimensions": [
                {k: d[k] for k in ("dimension_id", "name", "required", "scoring_model")}
                for d in judge.dimensions
            ],
        },
    }


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
        default_model: the model a judge that names none grades with (shown on the wire).
        check_model: why a model name cannot be used (None when the server routes it).
    """

    def __init__(
        self,
        store: Store,
        default_model: str | None,
        check_model: Callable[[str], str | None] = lambda _name: None,
    ) -> None:
        self._store, self._default, self._check = store, default_model, check_model

    def create(self, tenant: TenantView, body: object) -> dict[str, Any]:
        fields = parse_judge(body, partial=False, check_model=self._check)
        try:
            with self._store.session() as session:
                if judge_named(session, tenant.id, fields["name"]) is not None:
                    raise NameTakenError("judge", fields["name"])
                now = utcnow()
                judge = Judge(
                    id=new_id("judge"),
                    tenant_id=tenant.id,
                    name=fields["name"],
                    description=fields.get("description"),
                    rubric=fields["rubric"],
                    model=fields.get("model") or "",
                    dimensions=fields.get("dimensions")
                    or [DEFAULT_DIMENSION | {"dimension_id": new_id("dim")}],
                    version=1,
                    created_by_email=creator_email(tenant),
                    created_at=now,
                    updated_at=now,
                )
                session.add(judge)
                session.flush()
                return judge_wire(judge, self._default)
        except IntegrityError:
            raise NameTakenError("judge", fields["name"]) from None

    def list(
        self, tenant_id: str, limit: int | None, offset: int | None, project_id: str | None
    ) -> dict[str, Any]:
        """``{count, results}``; judges belong to no project, so a ``project_id`` filter matches none."""
        size, start = page(limit, offset)
        if project_id is not None:
            return {"count": 0, "results": []}
        with self._store.session() as session:
            count, judges = list_judges(session, tenant_id, size, start)
            return {"count": count, "results": [judge_wire(j, self._default) for j in judges]}

    def get(self, tenant_id: str, judge_id: str) -> dict[str, Any]:
        with self._store.session() as session:
            return judge_wire(tenant_judge(session, tenant_id, judge_id), self._default)

    def update(self, tenant_id: str, judge_id: str, body: object) -> dict[str, Any]:
        """Change the fields sent; a change of rubric, model or dimensions is the judge's next version."""
        try:
            with self._store.session() as session:
                judge = tenant_judge(session, tenant_id, judge_id)
                fields = parse_judge(
                    body, partial=True, existing=list(judge.dimensions), check_model=self._check
                )
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
                return judge_wire(judge, self._default)
        except IntegrityError:
            raise NameTakenError("judge", str(body)) from None

    def delete(self, tenant_id: str, judge_id: str) -> None:
        with self._store.session() as session:
            delete_judge(session, tenant_judge(session, tenant_id, judge_id))
