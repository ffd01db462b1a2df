"""Dataframer-compatible judge routes: ``/api/dataframer/judges/`` and their evaluations.

The SDK's calls: ``judges.list`` (``{count, results}``, ``limit``/``offset``/``project_id``),
``judges.retrieve``, ``judges.evaluations.create`` (synchronous grading), ``judges.evaluations.list`` and
``judges.evaluations.retrieve`` (with ``rendered_text``). datamill adds ``POST /judges/`` (define a judge),
``PATCH`` and ``DELETE /judges/{judge_id}/`` (the SDK reaches them with ``client.post``/``patch``/``delete``).
Handlers only translate between the wire and `datamill.services.judges`; a grading's model calls run on the
event loop, its database work on threads of its own.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict, Field

from datamill.core.errors import ConfigError, ModelError
from datamill.llm.gateway import Gateway
from datamill.server.auth import Context, CurrentTenant, JsonBody
from datamill.services.adaptation.adapt import make_gateway
from datamill.services.judges.evaluations import JudgeEvaluationService
from datamill.services.judges.judges import JudgeService

router = APIRouter(prefix="/api/dataframer", tags=["dataframer: judges"])


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


def _default_model(context: Context) -> str | None:
    return context.runs.settings.model or context.models.routing().default_model


def _check_model(context: Context) -> Any:
    def check(name: str) -> str | None:
        try:
            context.models.routing().resolve(name)
        except (ModelError, ConfigError) as exc:
            return f"is not a model this server can use: {exc}"
        return None

    return check


def _judges(context: Context) -> JudgeService:
    return JudgeService(context.store, _default_model(context), _check_model(context))


def _evaluations(context: Context) -> JudgeEvaluationService:
    def gateway() -> Gateway:
        return make_gateway(context.runs.settings.llm_settings(context.settings.data_dir))

    settings = context.runs.settings
    return JudgeEvaluationService(
        context.store,
        context.blobs,
        gateway,
        _default_model(context),
        _check_model(context),
        settings.price_table,
    )


@router.post("/judges/", status_code=201, response_model=JudgePublic)
def create_judge(tenant: CurrentTenant, context: Context, body: JsonBody = None) -> dict[str, Any]:
    """Define a judge: ``name``, ``rubric``, optional ``description``, ``model`` and ``dimensions``."""
    return _judges(context).create(tenant, body)


@router.get("/judges/", response_model=JudgeListPublic)
def list_judges(
    tenant: CurrentTenant,
    context: Context,
    limit: int | None = None,
    offset: int | None = None,
    project_id: str | None = None,
) -> dict[str, Any]:
    """The tenant's judges, newest first: ``{count, results}``."""
    return _judges(context).list(tenant.id, limit, offset, project_id)


@router.get("/judges/{judge_id}/", response_model=JudgePublic)
def retrieve_judge(judge_id: str, tenant: CurrentTenant, context: Context) -> dict[str, Any]:
    """One judge with its latest version."""
    return _judges(context).get(tenant.id, judge_id)


@router.patch("/judges/{judge_id}/", response_model=JudgePublic)
def update_judge(
    judge_id: str, tenant: CurrentTenant, context: Context, body: JsonBody = None
) -> dict[str, Any]:
    """Change a judge; a new rubric, model or dimensions make its next version."""
    return _judges(context).update(tenant.id, judge_id, body)


@router.delete("/judges/{judge_id}/", status_code=204)
def delete_judge(judge_id: str, tenant: CurrentTenant, context: Context) -> Response:
    """Delete a judge and its evaluations."""
    _judges(context).delete(tenant.id, judge_id)
    return Response(status_code=204)


@router.post("/judges/{judge_id}/evaluations/", status_code=201, response_model=JudgeEvaluationPublic)
async def create_judge_evaluation(
    judge_id: str, tenant: CurrentTenant, context: Context, body: JsonBody = None
) -> dict[str, Any]:
    """Grade an interaction, a run's samples or a seed dataset's now; the evaluation, succeeded or failed."""
    return await _evaluations(context).evaluate(tenant.id, judge_id, body)


@router.get("/judges/{judge_id}/evaluations/", response_model=JudgeEvaluationListPublic)
def list_judge_evaluations(
    judge_id: str,
    tenant: CurrentTenant,
    context: Context,
    limit: int | None = None,
    offset: int | None = None,
) -> dict[str, Any]:
    """The judge's evaluations, newest first: ``{count, results}``."""
    return _evaluations(context).list(tenant.id, judge_id, limit, offset)


@router.get("/judges/{judge_id}/evaluations/{evaluation_id}/", response_model=JudgeEvaluationDetailPublic)
def retrieve_judge_evaluation(
    judge_id: str, evaluation_id: str, tenant: CurrentTenant, context: Context
) -> dict[str, Any]:
    """One evaluation, with the text that was graded."""
    return _evaluations(context).get(tenant.id, judge_id, evaluation_id)
