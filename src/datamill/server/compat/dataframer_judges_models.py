"""Response models of the judge routes of the Dataframer-compatible API (judges and their evaluations).

The SDK's shapes plus what datamill adds (a judge's ``rubric``; an evaluation's ``target``, ``samples``,
``summary`` and ``cost_usd``). The routes declare them as their ``response_model``.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class _Wire(BaseModel):
    """Every answer lists exactly its declared fields: an undeclared one is a bug, caught before it leaves."""

    model_config = ConfigDict(extra="forbid")


def _time(description: str) -> Any:
    return Field(description=description, json_schema_extra={"format": "date-time"})


ScoringModel = Literal["pass_fail", "scale_1_5", "single_select", "checklist"]


class JudgeDimensionPublic(_Wire):
    dimension_id: str = Field(description="Stable id of the dimension (kept when the judge is edited).")
    name: str
    required: bool = Field(description="Whether the dimension counts in the overall score.")
    scoring_model: ScoringModel


class JudgeVersionPublic(_Wire):
    version_number: int = Field(
        description="1, then one more for each change of rubric, model or dimensions."
    )
    model: str | None = Field(description="The model the judge grades with.")
    created_at: str = _time("When this version was made.")
    dimensions: list[JudgeDimensionPublic]


class JudgePublic(_Wire):
    id: str
    name: str
    description: str | None
    project_id: str | None = Field(description="Always null: judges belong to the tenant, not to a project.")
    created_at: str = _time("When the judge was created.")
    rubric: str = Field(description="What the judge grades against.")
    latest_version: JudgeVersionPublic


class JudgeListPublic(_Wire):
    count: int
    results: list[JudgePublic]


class DimensionVerdictPublic(_Wire):
    dimension_id: str
    name: str
    scoring_model: ScoringModel
    score: float = Field(description="0–1.")
    passed: bool | None = Field(description="pass_fail dimensions only.")
    label: str | None
    labels: list[str] | None
    notes: str | None


class VerdictPublic(_Wire):
    overall_score: float = Field(description="0–1: the mean of the required dimensions.")
    confidence: float = Field(description="0–1.")
    reasoning: str
    dimensions: list[DimensionVerdictPublic]


class SampleVerdictPublic(_Wire):
    sample: str = Field(description="The sample's name (a run's sample_<n>, a seed file's name).")
    verdict: VerdictPublic | None
    error: str | None


class EvaluationSummaryPublic(_Wire):
    samples: int
    graded: int
    failed: int
    mean_score: float | None
    min_score: float | None
    max_score: float | None


class JudgeEvaluationPublic(_Wire):
    id: str
    judge_id: str
    judge_version: int
    model: str
    status: Literal["succeeded", "failed"]
    error: str | None
    source: Literal["api", "monitor", "ui"]
    latency_ms: int
    created_at: str = _time("When the evaluation was made.")
    verdict: VerdictPublic | None
    target: dict[str, Any] = Field(description="What was graded: {kind: input | run | dataset, id}.")
    samples: list[SampleVerdictPublic] | None = Field(description="Each sample's verdict (run or dataset).")
    summary: EvaluationSummaryPublic | None
    cost_usd: float = Field(description="What the judge's model calls cost.")


class JudgeEvaluationDetailPublic(JudgeEvaluationPublic):
    rendered_text: str = Field(description="The text graded (the samples' names for a run or a dataset).")


class JudgeEvaluationListPublic(_Wire):
    count: int
    results: list[JudgeEvaluationPublic]
