"""Adaption API custom evaluation routes (Adaption API): start one, list a dataset's, read one.

Creating answers at once with the ``pending`` evaluation; the judge runs in the background
(`api.custom_evals.BackgroundCustomEvals`), so poll ``get`` until ``succeeded`` or ``failed``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from datamill.server.auth import Context, CurrentTenant
from datamill.server.compat.adaption_models import ErrorPublic
from datamill.services.datasets.custom_evals import CustomEvalView

_ERRORS: dict[int | str, dict[str, object]] = {
    code: {"model": ErrorPublic} for code in (400, 401, 404, 409, 422)
}

router = APIRouter(tags=["datasets: custom evals"], responses=_ERRORS)


class CustomEvalCreate(BaseModel):
    model_config = ConfigDict(extra="ignore")

    judge_prompt: str = Field(description="The rubric the judge scores each sampled row against.")
    name: str | None = Field(None, description="A label, so a history of rubrics stays legible.")
    sample_size: int | None = Field(None, description="Rows to judge (datamill extension; default 50).")


class CustomEvalPublic(BaseModel):
    custom_eval_id: str
    dataset_id: str
    status: str
    judge_prompt: str
    name: str | None
    score_before: float | None
    score_after: float | None
    improvement_percent: float | None
    scored_rows: int | None
    error_message: str | None
    created_at: dt.datetime
    completed_at: dt.datetime | None
    run_id: str | None = Field(None, description="The run whose output was judged; null: the dataset's rows.")
    model: str | None = Field(None, description="The judge model.")
    sample_size: int | None = None
    results: dict[str, Any] | None = Field(None, description="Per-row verdicts (only when reading one).")


class CustomEvalListPublic(BaseModel):
    items: list[CustomEvalPublic]


def custom_eval_public(view: CustomEvalView, *, with_results: bool = False) -> CustomEvalPublic:
    """The wire ``CustomEval`` of an evaluation."""
    return CustomEvalPublic(
        custom_eval_id=view.id,
        dataset_id=view.dataset_id,
        status=view.status,
        judge_prompt=view.judge_prompt,
        name=view.name,
        score_before=view.score_before,
        score_after=view.score_after,
        improvement_percent=view.improvement_percent,
        scored_rows=view.scored_rows,
        error_message=view.error_message,
        created_at=view.created_at,
        completed_at=view.completed_at,
        run_id=view.run_id,
        model=view.model,
        sample_size=view.sample_size,
        results=view.results if with_results else None,
    )


@router.post("/datasets/{dataset_id}/custom-evals", status_code=201, response_model=CustomEvalPublic)
def create_custom_eval(
    dataset_id: str, body: CustomEvalCreate, tenant: CurrentTenant, context: Context
) -> CustomEvalPublic:
    """Start judging a sample of the dataset's rows against ``judge_prompt``, before and after its run.

    Without a run output, the dataset's own rows are judged and ``score_after`` stays null. 422 while the
    dataset has not been read (or failed), 409 while a run processes it.
    """
    view = context.custom_evals.create(tenant.id, dataset_id, body.judge_prompt, body.name, body.sample_size)
    context.custom_eval_runner.submit(view.id)
    return custom_eval_public(view)


@router.get("/datasets/{dataset_id}/custom-evals", response_model=CustomEvalListPublic)
def list_custom_evals(dataset_id: str, tenant: CurrentTenant, context: Context) -> CustomEvalListPublic:
    """The dataset's custom evaluations, newest first (not paginated)."""
    views = context.custom_evals.list_for_dataset(tenant.id, dataset_id)
    return CustomEvalListPublic(items=[custom_eval_public(v) for v in views])


@router.get("/datasets/{dataset_id}/custom-evals/{custom_eval_id}", response_model=CustomEvalPublic)
def get_custom_eval(
    dataset_id: str, custom_eval_id: str, tenant: CurrentTenant, context: Context
) -> CustomEvalPublic:
    """One custom evaluation, with its per-row verdicts in ``results``."""
    view = context.custom_evals.get(tenant.id, dataset_id, custom_eval_id)
    return custom_eval_public(view, with_results=True)
