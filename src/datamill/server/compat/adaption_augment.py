"""Adaption API augment route: a new dataset of the source's rows plus relevant rows retrieved for it.

The body and the answer are `services.datasets.augment`'s; ``datasets.expand(rows=...)`` without languages
or pairs sends ``domain_rows`` here.
"""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict

from datamill.server.auth import Context, CurrentTenant, JsonBody
from datamill.server.compat.adaption_models import ErrorPublic

_ERRORS: dict[int | str, dict[str, object]] = {
    code: {"model": ErrorPublic} for code in (400, 401, 402, 404, 409, 422)
}

router = APIRouter(tags=["datasets: runs"], responses=_ERRORS)


class AugmentPublic(BaseModel):
    model_config = ConfigDict(extra="allow")

    dataset_id: str | None
    status: str | None
    domain_rows: float
    general_rows: float
    estimated_credits_consumed: float
    estimate: bool
    message: str | None = None


@router.post(
    "/datasets/{dataset_id}/augment", response_model=AugmentPublic, response_model_exclude_none=False
)
def augment_dataset(
    dataset_id: str, tenant: CurrentTenant, context: Context, body: JsonBody = None
) -> AugmentPublic:
    """A new dataset with relevant rows from your other datasets (``estimate: true``: a quote)."""
    return AugmentPublic(**context.augment.augment(tenant.id, dataset_id, body))
