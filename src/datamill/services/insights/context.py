"""Context (`TenantContext`, the Dataframer API's ``/api/dataframer/context/``): what the tenant has taught.

- **Rubrics** are the tenant's judges (`datamill.services.judges`): each judge's rubric is a rubric's
  ``instructions``, its dimensions the rubric's dimensions (a ``scale_1_5`` one with its five described
  levels, a ``pass_fail`` one with ``fail`` and ``pass``). With ``rubric_id`` (a judge's id) only that
  rubric comes back, with its examples: the interactions its evaluations graded at the top
  (``positive_examples``, overall score ≥ 0.75) and at the bottom (``negative_examples``, < 0.5), and no
  facts.
- **Facts** are what the tenant's red-team specs say about its applications: for each spec, the
  application, its domain and its concerns, each a fact (``kind`` ``application``, ``domain`` or
  ``concern``) tagged with the spec's name.

Judges and specs belong to no project, so a ``project_id`` leaves no rubric (facts are not narrowed).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select

from datamill.services.errors import NotFoundError
from datamill.services.judges.grader import LEVELS
from datamill.store import Store
from datamill.store.red_team_models import Judge, JudgeEvaluation, RedTeamSpec

POSITIVE_SCORE = 0.75
NEGATIVE_SCORE = 0.5
MAX_EXAMPLES = 20


@dataclass(frozen=True)
class Level:
    """One level a dimension's verdict may pick: its label, its value and what it means."""

    label: str
    value: int
    description: str


@dataclass(frozen=True)
class Example:
    """An interaction a judge graded: the question (None when there is none) and the answer."""

    query: str | None
    answer: str
    source_id: str


@dataclass(frozen=True, kw_only=True)
class RubricDimension:
    name: str
    required: bool
    scoring_model: str
    levels: tuple[Level, ...]
    positive_examples: tuple[Example, ...]
    negative_examples: tuple[Example, ...]


@dataclass(frozen=True, kw_only=True)
class Rubric:
    """A judge as a rubric; `examples_omitted` counts the examples left out of its dimensions."""

    id: str
    name: str
    description: str | None
    instructions: str
    version: int
    examples_omitted: int
    dimensions: tuple[RubricDimension, ...]


@dataclass(frozen=True, kw_only=True)
class Fact:
    """What a red-team spec says: its application, domain or concern (`kind`), tagged with its name."""

    id: str
    text: str
    grounding: str
    kind: str
    tags: tuple[str, ...]
    confidence: float
    created_at: dt.datetime
    source_id: str


@dataclass(frozen=True, kw_only=True)
class TenantContext:
    """The tenant's rubrics and facts; `facts` is None when one rubric was asked for."""

    rubrics: tuple[Rubric, ...]
    facts: tuple[Fact, ...] | None


def _levels(scoring_model: str) -> tuple[Level, ...]:
    if scoring_model == "pass_fail":
        return (Level("fail", 0, "does not meet this dimension"), Level("pass", 1, "meets this dimension"))
    return tuple(Level(str(i + 1), i + 1, text) for i, text in enumerate(LEVELS))


def _rubric(judge: Judge, examples: tuple[list[Example], list[Example]], *, shown: bool) -> Rubric:
    """A judge as a rubric; its examples when `shown`, else only how many were left out."""
    positive, negative = examples if shown else ([], [])
    return Rubric(
        id=judge.id,
        name=judge.name,
        description=judge.description,
        instructions=judge.rubric,
        version=judge.version,
        examples_omitted=0 if shown else len(examples[0]) + len(examples[1]),
        dimensions=tuple(
            RubricDimension(
                name=d["name"],
                required=bool(d["required"]),
                scoring_model=d["scoring_model"],
                levels=_levels(d["scoring_model"]),
                positive_examples=tuple(positive),
                negative_examples=tuple(negative),
            )
            for d in judge.dimensions
        ),
    )


def _example(row: JudgeEvaluation) -> Example:
    text = row.rendered_text
    query, _, answer = text.rpartition("\n\nOutput:\n")
    return Example(query or None, answer if query else text, row.id)


def _facts(specs: list[RedTeamSpec]) -> tuple[Fact, ...]:
    facts = []
    for spec in specs:
        said = {
            "application": spec.app_description,
            "domain": spec.domain_description,
            "concern": spec.concerns,
        }
        for kind, text in said.items():
            if text:
                facts.append(
                    Fact(
                        id=f"{spec.id}_{kind}",
                        text=text,
                        grounding=f"the red-team spec {spec.name!r}",
                        kind=kind,
                        tags=(spec.name,),
                        confidence=1.0,
                        created_at=spec.updated_at,
                        source_id=spec.id,
                    )
                )
    return tuple(facts)


class ContextService:
    """The tenant's context; see the module docstring."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def get(self, tenant_id: str, project_id: str | None, rubric_id: str | None) -> TenantContext:
        with self._store.session() as session:
            if rubric_id is not None:
                judge = session.scalar(
                    select(Judge).where(Judge.id == rubric_id, Judge.tenant_id == tenant_id)
                )
                if judge is None:
                    raise NotFoundError("rubric", rubric_id)
                return TenantContext(rubrics=(_rubric(judge, self._examples(judge), shown=True),), facts=None)
            judges = (
                []
                if project_id is not None
                else list(
                    session.scalars(
                        select(Judge).where(Judge.tenant_id == tenant_id).order_by(Judge.created_at, Judge.id)
                    )
                )
            )
            specs = list(
                session.scalars(
                    select(RedTeamSpec)
                    .where(RedTeamSpec.tenant_id == tenant_id)
                    .order_by(RedTeamSpec.created_at, RedTeamSpec.id)
                )
            )
            return TenantContext(
                rubrics=tuple(_rubric(j, self._examples(j), shown=False) for j in judges),
                facts=_facts(specs),
            )

    def _examples(self, judge: Judge) -> tuple[list[Example], list[Example]]:
        with self._store.session() as session:
            rows = session.scalars(
                select(JudgeEvaluation)
                .where(JudgeEvaluation.judge_id == judge.id, JudgeEvaluation.status == "succeeded")
                .order_by(JudgeEvaluation.created_at.desc(), JudgeEvaluation.id.desc())
            )
            single = [r for r in rows if r.target.get("kind") == "input" and r.verdict]
        positive = [_example(r) for r in single if r.verdict and r.verdict["overall_score"] >= POSITIVE_SCORE]
        negative = [_example(r) for r in single if r.verdict and r.verdict["overall_score"] < NEGATIVE_SCORE]
        return positive[:MAX_EXAMPLES], negative[:MAX_EXAMPLES]
