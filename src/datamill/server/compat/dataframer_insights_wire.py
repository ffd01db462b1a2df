"""The wire side of failures and context in the Dataframer-compatible API: query checks and answers.

A failure is written in the hosted service's shape: ``project`` is null, ``analysis`` holds the causes,
``llm_judge`` the judge's verdicts and ``human_review`` is empty (datamill takes no human reviews);
``detail=summary`` leaves out the causes, the rubrics and the review and judge blocks, and the reviews and
judgments come only when included. The routes leave unset fields out, so what is not built here is absent.
"""

from __future__ import annotations

from typing import Any

from datamill.core.fields import Issues
from datamill.server.compat.dataframer_insights_models import (
    AnalysisPublic,
    CauseExamplePublic,
    CausePublic,
    ContextPublic,
    ExamplePublic,
    FactPublic,
    FailurePublic,
    HumanReviewPublic,
    JudgeRefPublic,
    JudgmentPublic,
    JudgmentVerdictPublic,
    KnowledgePublic,
    LevelPublic,
    LlmJudgePublic,
    RubricDimensionPublic,
    RubricPublic,
    RubricRefPublic,
    SourcePublic,
)
from datamill.services.generation.common import iso
from datamill.services.insights.context import Example, Rubric, TenantContext
from datamill.services.insights.failures import Failure, FailureCause, JudgeFindings, Judgment

INCLUDES = ("reviews", "judgments", "context")
MAX_PAGE = 100


def parse_include(
    value: str | None, field: str, issues: Issues, allowed: tuple[str, ...] = INCLUDES
) -> set[str]:
    """A comma-separated list of `allowed` names (each one refused by name)."""
    names = {part.strip() for part in (value or "").split(",") if part.strip()}
    for name in sorted(names - set(allowed)):
        issues.add(field, f"unknown value {name!r}; allowed: {', '.join(allowed)}")
    return names


def check_list_query(
    detail: str | None, include: str | None, limit: int | None, offset: int | None
) -> tuple[set[str], int, int]:
    """The list's ``include`` names, page size and start; `ValidationError` naming each bad parameter."""
    issues = Issues()
    if detail not in (None, "full", "summary"):
        issues.add("detail", f"must be full or summary, got {detail!r}")
    names = parse_include(include, "include", issues)
    size = 20 if limit is None else limit
    start = 0 if offset is None else offset
    if not 1 <= size <= MAX_PAGE:
        issues.add("limit", f"must be from 1 to {MAX_PAGE}, got {size}")
    if start < 0:
        issues.add("offset", f"must be at least 0, got {start}")
    issues.raise_if_any()
    return names, size, start


def check_detail_query(include: str | None, exclude: str | None) -> tuple[set[str], set[str]]:
    """A failure's ``include`` and ``exclude`` names."""
    issues = Issues()
    names = parse_include(include, "include", issues, ("context",))
    dropped = parse_include(exclude, "exclude", issues, ("reviews", "judgments"))
    issues.raise_if_any()
    return names, dropped


# --- context ---


def _example(example: Example) -> ExamplePublic:
    return ExamplePublic(
        query=example.query, answer=example.answer, source_id=example.source_id, source_url=None
    )


def _rubric(rubric: Rubric) -> RubricPublic:
    return RubricPublic(
        id=rubric.id,
        name=rubric.name,
        description=rubric.description,
        instructions=rubric.instructions,
        version=rubric.version,
        examples_omitted=rubric.examples_omitted,
        project=None,
        dimensions=[
            RubricDimensionPublic(
                name=d.name,
                required=d.required,
                scoring_model=d.scoring_model,  # type: ignore[arg-type]
                levels=[
                    LevelPublic(label=v.label, value=v.value, description=v.description) for v in d.levels
                ],
                examples=[_example(e) for e in (*d.positive_examples, *d.negative_examples)],
                positive_examples=[_example(e) for e in d.positive_examples],
                negative_examples=[_example(e) for e in d.negative_examples],
            )
            for d in rubric.dimensions
        ],
    )


def context_public(context: TenantContext) -> ContextPublic:
    """The tenant's rubrics, and its facts as ``knowledge`` unless one rubric was asked for."""
    extra: dict[str, Any] = {}
    if context.facts is not None:
        facts = [
            FactPublic(
                id=f.id,
                text=f.text,
                grounding=f.grounding,
                kind=f.kind,  # type: ignore[arg-type]
                tags=list(f.tags),
                confidence=f.confidence,
                created_at=iso(f.created_at),
                source=SourcePublic(source_id=f.source_id, source_url=None),
            )
            for f in context.facts
        ]
        extra["knowledge"] = KnowledgePublic(total=len(facts), facts=facts)
    return ContextPublic(
        rubric_count=len(context.rubrics), rubrics=[_rubric(r) for r in context.rubrics], **extra
    )


# --- failures ---


def _cause(cause: FailureCause) -> CausePublic:
    when = iso(cause.when)
    return CausePublic(
        id=cause.id,
        title=cause.title,
        description=cause.description,
        probability=cause.probability,
        rank=cause.rank,
        attributed_trace_count=cause.count,
        status="active",
        first_detected_at=when,
        last_confirmed_at=when,
        updated_at=when,
        examples=[
            CauseExamplePublic(
                quote=cause.description, source_id=cause.source_id, source_url=None, occurred_at=when
            )
        ],
        remediation=None,
    )


def _judgment(judgment: Judgment) -> JudgmentPublic:
    return JudgmentPublic(
        judge=JudgeRefPublic(id=judgment.judge_id, name=judgment.judge_name, model=judgment.model),
        overall_score=judgment.overall_score,
        confidence=judgment.confidence,
        rubric=judgment.judge_name,
        rubric_id=judgment.judge_id,
        source_id=judgment.source_id,
        source_url=None,
        evaluated_at=iso(judgment.evaluated_at),
        verdicts=[
            JudgmentVerdictPublic(dimension=v.dimension, score=v.label, notes=v.notes)
            for v in judgment.verdicts
        ],
    )


def _llm_judge(findings: JudgeFindings | None, *, with_judgments: bool) -> LlmJudgePublic | None:
    if findings is None:
        return None
    extra: dict[str, Any] = {}
    if with_judgments:
        extra["judgments"] = [_judgment(j) for j in findings.judgments]
    return LlmJudgePublic(
        average_score=findings.average_score,
        coverage=findings.coverage,
        judged_trace_count=findings.judged_trace_count,
        judgment_count=len(findings.judgments),
        **extra,
    )


def _human_review(*, with_reviews: bool) -> HumanReviewPublic:
    extra: dict[str, Any] = {"reviews": []} if with_reviews else {}
    return HumanReviewPublic(
        average_score=None,
        coverage=0.0,
        review_count=0,
        reviewed_trace_count=0,
        severity_distribution={"low": 0, "medium": 0, "high": 0, "critical": 0},
        **extra,
    )


def failure_fields(failure: Failure, *, summary: bool, include: set[str]) -> dict[str, Any]:
    """The failure's fields as the query asks: counts only for a `summary`; reviews, judgments if included."""
    when = iso(failure.when)
    analysis: dict[str, Any] = {
        "status": "ready",
        "cause_count": len(failure.causes),
        "prompt_template_count": 0,
        "last_analyzed_at": when,
        "new_traces_since_analysis": 0,
    }
    if not summary:
        analysis |= {"causes": [_cause(c) for c in failure.causes], "prompt_templates": []}
    fields: dict[str, Any] = {
        "id": failure.id,
        "name": failure.name,
        "description": failure.description,
        "trace_count": failure.trace_count,
        "first_tracked_at": when,
        "last_refreshed_at": when,
        "project": None,
        "analysis": AnalysisPublic(**analysis),
    }
    if not summary:
        fields["rubrics"] = [RubricRefPublic(id=r.id, name=r.name) for r in failure.rubrics]
        fields["human_review"] = _human_review(with_reviews="reviews" in include)
        fields["llm_judge"] = _llm_judge(failure.judge, with_judgments="judgments" in include)
    return fields


def failure_public(failure: Failure, *, summary: bool, include: set[str]) -> FailurePublic:
    return FailurePublic(**failure_fields(failure, summary=summary, include=include))
