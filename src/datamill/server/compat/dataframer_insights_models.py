"""Response models of the failure and context routes of the Dataframer-compatible API.

The hosted service's shapes; the routes declare them as their ``response_model`` and leave unset fields
out, so ``detail=summary`` and ``include`` decide which fields an answer carries.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class _Wire(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _time(description: str) -> Any:
    return Field(description=description, json_schema_extra={"format": "date-time"})


class SourcePublic(_Wire):
    source_id: str
    source_url: str | None


class FactPublic(_Wire):
    id: str
    text: str
    grounding: str
    kind: Literal["application", "domain", "concern"]
    tags: list[str]
    confidence: float
    created_at: str | None = _time("When the fact was last stated.")
    source: SourcePublic


class KnowledgePublic(_Wire):
    total: int
    facts: list[FactPublic]


class LevelPublic(_Wire):
    label: str
    value: int
    description: str


class ExamplePublic(_Wire):
    query: str | None
    answer: str
    source_id: str
    source_url: str | None


class RubricDimensionPublic(_Wire):
    name: str
    required: bool
    scoring_model: Literal["pass_fail", "scale_1_5", "single_select", "checklist"]
    levels: list[LevelPublic]
    examples: list[ExamplePublic]
    positive_examples: list[ExamplePublic]
    negative_examples: list[ExamplePublic]


class RubricPublic(_Wire):
    id: str = Field(description="The judge's id.")
    name: str
    description: str | None
    instructions: str = Field(description="The judge's rubric.")
    version: int
    examples_omitted: int = Field(description="Examples left out: ask with rubric_id to see them.")
    project: dict[str, Any] | None
    dimensions: list[RubricDimensionPublic]


class ContextPublic(_Wire):
    knowledge: KnowledgePublic | None = None
    rubric_count: int
    rubrics: list[RubricPublic]


class CauseExamplePublic(_Wire):
    quote: str
    source_id: str
    source_url: str | None
    occurred_at: str | None = _time("When it happened.")


class CausePublic(_Wire):
    id: str
    title: str
    description: str
    probability: float
    rank: int
    attributed_trace_count: int
    status: Literal["active", "retired", "archived"]
    first_detected_at: str | None = _time("When it was first seen.")
    last_confirmed_at: str | None = _time("When it was last seen.")
    updated_at: str | None = _time("When it last changed.")
    examples: list[CauseExamplePublic]
    remediation: dict[str, Any] | None


class AnalysisPublic(_Wire):
    status: Literal["never_run", "analyzing", "ready", "failed"]
    cause_count: int
    causes: list[CausePublic] | None = None
    prompt_template_count: int
    prompt_templates: list[dict[str, Any]] | None = None
    last_analyzed_at: str | None = _time("When the causes were read.")
    new_traces_since_analysis: int


class HumanReviewPublic(_Wire):
    average_score: float | None
    coverage: float
    review_count: int
    reviewed_trace_count: int
    severity_distribution: dict[str, int]
    reviews: list[dict[str, Any]] | None = None


class JudgeRefPublic(_Wire):
    id: str
    name: str
    model: str


class JudgmentVerdictPublic(_Wire):
    dimension: str
    score: str = Field(description="The label of the level picked: 1-5, or pass / fail.")
    notes: str | None


class JudgmentPublic(_Wire):
    judge: JudgeRefPublic
    overall_score: float | None
    confidence: float | None
    rubric: str
    rubric_id: str
    source_id: str
    source_url: str | None
    evaluated_at: str | None = _time("When the judge graded it.")
    verdicts: list[JudgmentVerdictPublic]


class LlmJudgePublic(_Wire):
    average_score: float | None
    coverage: float
    judged_trace_count: int
    judgment_count: int
    judgments: list[JudgmentPublic] | None = None


class RubricRefPublic(_Wire):
    id: str
    name: str


class FailurePublic(_Wire):
    id: str
    name: str
    description: str
    trace_count: int = Field(description="The samples the failure covers (1 for a whole job).")
    first_tracked_at: str | None = _time("When it happened.")
    last_refreshed_at: str | None = _time("When it was last updated.")
    project: dict[str, Any] | None
    rubrics: list[RubricRefPublic] | None = None
    analysis: AnalysisPublic
    human_review: HumanReviewPublic | None = None
    llm_judge: LlmJudgePublic | None = None


class FailureDetailPublic(FailurePublic):
    context: ContextPublic | None = None


class FailureListPublic(_Wire):
    count: int
    results: list[FailurePublic]
    context: ContextPublic | None = None
