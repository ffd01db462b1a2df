"""Adaption API extend-trajectories route: a new dataset with the user's next turn of each conversation.

The body is `services.adaptation.extend`'s; the answer is the run/adapt response (camelCase figures) plus
the new ``dataset_id`` (null on an estimate).
"""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from datamill.server.auth import Context, CurrentTenant, JsonBody
from datamill.server.compat.adaption_models import ErrorPublic
from datamill.services.adaptation.extend import parse_extend_request

_ERRORS: dict[int | str, dict[str, object]] = {
    code: {"model": ErrorPublic} for code in (400, 401, 402, 404, 409, 422)
}

router = APIRouter(tags=["datasets: runs"], responses=_ERRORS)


class ExtendPublic(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    run_id: str | None
    estimated_minutes: float = Field(alias="estimatedMinutes")
    estimated_credits_consumed: float = Field(alias="estimatedCreditsConsumed")
    estimate: bool
    multimodal_pricing_applied: bool = Field(alias="multimodalPricingApplied")
    dataset_id: str | None


@router.post(
    "/datasets/{dataset_id}/extend-trajectories",
    response_model=ExtendPublic,
    response_model_by_alias=True,
)
def extend_trajectories(
    dataset_id: str, tenant: CurrentTenant, context: Context, body: JsonBody = None
) -> ExtendPublic:
    """Make a new dataset with the user's next message of each conversation in ``extended_prompt``."""
    made = context.runs.extend.extend(tenant.id, dataset_id, parse_extend_request(body))
    return ExtendPublic(
        run_id=made.run_id,
        estimatedMinutes=round(made.minutes, 2),
        estimatedCreditsConsumed=made.credits,
        estimate=made.estimate,
        multimodalPricingApplied=False,
        dataset_id=made.dataset_id,
    )
