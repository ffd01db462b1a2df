"""Context (Dataframer-compatible ``/api/dataframer/context/``): what the tenant has taught datamill.

- **Rubrics** are the tenant's judges (`datamill.services.judges`): each judge's rubric is a rubric's
  ``instructions``, its dimensions the rubric's dimensions (a ``scale_1_5`` one with its five described
  levels, a ``pass_fail`` one with ``fail`` and ``pass``). With ``rubric_id`` (a judge's id) only that
  rubric comes back, with its examples: the interactions its evaluations graded at the top
  (``positive_examples``, overall score ≥ 0.75) and at the bottom (``negative_examples``, < 0.5), and the
  answer has no ``knowledge``.
- **Facts** are what the tenant's red-team specs say about its applications: for each spec, the
  application, its domain and its concerns, each a fact (``kind`` ``application``, ``domain`` or
  ``concern``) tagged with the spec's name.

Judges and specs belong to no project, so a ``project_id`` leaves no rubric (facts are not narrowed).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from datamill.services.errors import NotFoundError
from datamill.services.generation.common import iso
from datamill.services.judges.grader import LEVELS
from datamill.store import Store
from datamill.store.red_team_models import Judge, JudgeEvaluation, RedTeamSpec

POSITIVE_SCORE = 0.75
NEGATIVE_SCORE = 0.5
MAX_EXAMPLES = 20


def _levels(scoring_model: str) -> list[dict[str, Any]]:
    if scoring_model == "pass_fail":
        return [
            {"label": "fail", "value": 0, "description": "does not meet this dimension"},
            {"label": "pass", "value": 1, "description": "meets this dimension"},
        ]
    return [{"label": str(i + 1), "value": i + 1, "description": text} for i, text in enumerate(LEVELS)]


def _rubric(judge: Judge, examples: tuple[list[Any], list[Any]], *, shown: bool) -> dict[str, Any]:
    """A judge as a rubric; its examples when `shown`, else only how many were left out."""
    positive, negative = examples if shown else ([], [])
    return {
        "id": judge.id,
        "name": judge.name,
        "description": judge.description,
        "instructions": judge.rubric,
        "version": judge.version,
        "examples_omitted": 0 if shown else len(examples[0]) + len(examples[1]),
        "project": None,
        "dimensions": [
            {
                "name": d["name"],
                "required": bool(d["required"]),
                "scoring_model": d["scoring_model"],
                "levels": _levels(d["scoring_model"]),
                "examples": positive + negative,
                "positive_examples": positive,
                "negative_examples": negative,
            }
            for d in judge.dimensions
        ],
    }


def _example(row: JudgeEvaluation) -> dict[str, Any]:
    text = row.rendered_text
    query, _, answer = text.rpartition("\n\nOutput:\n")
    return {
        "query": query or None,
        "answer": answer if query else text,
        "source_id": row.id,
        "source_url": None,
    }


def _facts(specs: list[RedTeamSpec]) -> list[dict[str, Any]]:
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
                    {
                        "id": f"{spec.id}_{kind}",
                        "text": text,
                        "grounding": f"the red-team spec {spec.name!r}",
                        "kind": kind,
                        "tags": [spec.name],
                        "confidence": 1.0,
                        "created_at": iso(spec.updated_at),
                        "source": {"source_id": spec.id, "source_url": None},
                    }
                )
    return facts


class ContextService:
    """The tenant's context; see the module docstring."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def get(self, tenant_id: str, project_id: str | None, rubric_id: str | None) -> dict[str, Any]:
        with self._store.session() as session:
            if rubric_id is not None:
                judge = session.scalar(
                    select(Judge).where(Judge.id == rubric_id, Judge.tenant_id == tenant_id)
                )
                if judge is None:
                    raise NotFoundError("rubric", rubric_id)
                return {"rubric_count": 1, "rubrics": [_rubric(judge, self._examples(judge), shown=True)]}
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
            facts = _facts(specs)
            return {
                "knowledge": {"total": len(facts), "facts": facts},
                "rubric_count": len(judges),
                "rubrics": [_rubric(j, self._examples(j), shown=False) for j in judges],
            }

    def _examples(self, judge: Judge) -> tuple[list[Any], list[Any]]:
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
