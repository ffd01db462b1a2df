"""The red-teaming and judging schema: red-team specs and runs, judges and their evaluations.

A red-team spec describes an LLM application (what it does, its domain, the concerns to test); a red-team
run writes adversarial prompts against it as a job in the shared ``runs`` queue (kind `RED_TEAM_JOB`), its
public status read from the job's. A judge is a tenant's rubric and model; a judge evaluation is one
grading by it (of one input and output, of a generation run's samples, or of a seed dataset's files).

Every row a tenant owns carries ``tenant_id`` and every query filters on it.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from datamill.store.models import Base

#: ``runs.kind`` of a red-team run's job.
RED_TEAM_JOB = "red_team"


class RedTeamSpec(Base):
    """An LLM application to write adversarial prompts against; ``name`` is snake_case, unique per tenant."""

    __tablename__ = "red_team_specs"
    __table_args__ = (
        UniqueConstraint("tenant_id", "name", name="uq_red_team_specs_tenant_name"),
        Index("ix_red_team_specs_tenant_created", "tenant_id", "created_at", "id"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    name: Mapped[str] = mapped_column(String(512))
    app_description: Mapped[str] = mapped_column(Text)
    domain_description: Mapped[str] = mapped_column(Text)
    concerns: Mapped[str | None] = mapped_column(Text)
    created_by_email: Mapped[str] = mapped_column(String(320))
    created_at: Mapped[dt.datetime]
    updated_at: Mapped[dt.datetime]


class RedTeamRun(Base):
    """A run writing ``number_of_behaviors × number_of_prompts_per_behavior`` prompts against a spec.

    The spec's descriptions are copied into ``target`` when the run is created, so an edit of the spec
    does not change a run already queued. ``results`` holds ``behavior_to_enhanced_queries`` and
    ``summary`` the counts (styles, dropped items, calls) once the job succeeded.
    """

    __tablename__ = "red_team_runs"
    __table_args__ = (Index("ix_red_team_runs_tenant_created", "tenant_id", "created_at", "id"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    spec_id: Mapped[str] = mapped_column(ForeignKey("red_team_specs.id"), index=True)
    model_name: Mapped[str] = mapped_column(String(200))
    number_of_behaviors: Mapped[int]
    number_of_prompts_per_behavior: Mapped[int]
    target: Mapped[dict[str, Any]]
    job_id: Mapped[str] = mapped_column(String(40))
    results: Mapped[dict[str, Any] | None]
    summary: Mapped[dict[str, Any] | None]
    created_by_email: Mapped[str] = mapped_column(String(320))
    created_at: Mapped[dt.datetime]
    completed_at: Mapped[dt.datetime | None]


class Judge(Base):
    """A tenant's judge: a rubric, the model that grades with it, and the dimensions it scores.

    ``version`` counts the edits of rubric, model or dimensions (from 1); each evaluation records the
    version it ran on.
    """

    __tablename__ = "judges"
    __table_args__ = (
        UniqueConstraint("tenant_id", "name", name="uq_judges_tenant_name"),
        Index("ix_judges_tenant_created", "tenant_id", "created_at", "id"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    name: Mapped[str] = mapped_column(String(512))
    description: Mapped[str | None] = mapped_column(Text)
    rubric: Mapped[str] = mapped_column(Text)
    model: Mapped[str] = mapped_column(String(200))
    dimensions: Mapped[list[Any]]
    version: Mapped[int]
    created_by_email: Mapped[str] = mapped_column(String(320))
    created_at: Mapped[dt.datetime]
    updated_at: Mapped[dt.datetime]


class JudgeEvaluation(Base):
    """One grading by a judge: ``status`` ``succeeded`` or ``failed`` (with ``error``).

    ``target`` says what was graded (``{"kind": "input"}``, ``{"kind": "run", "id": ...}`` or
    ``{"kind": "dataset", "id": ...}``); ``verdict`` is the overall verdict (the mean over the samples for
    a run or a dataset), ``samples`` the per-sample verdicts, ``rendered_text`` the text graded (of a single
    input, or the samples' names).
    """

    __tablename__ = "judge_evaluations"
    __table_args__ = (Index("ix_judge_evaluations_judge_created", "judge_id", "created_at", "id"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), index=True)
    judge_id: Mapped[str] = mapped_column(ForeignKey("judges.id"))
    judge_version: Mapped[int]
    model: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16))
    error: Mapped[str | None] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(16))
    latency_ms: Mapped[int]
    target: Mapped[dict[str, Any]]
    verdict: Mapped[dict[str, Any] | None]
    samples: Mapped[list[Any] | None]
    rendered_text: Mapped[str] = mapped_column(Text)
    cost_usd: Mapped[float]
    created_at: Mapped[dt.datetime]
