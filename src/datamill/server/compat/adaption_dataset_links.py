"""Adaption API dataset routes about what left datamill: export links and the best fine-tune launch config.

``GET /api/v1/datasets/{id}/export-links`` answers where the dataset was published
(`services.datasets.export_links`). ``GET /api/v1/datasets/{id}/finetune/best-launch-config`` answers
``{"best_job_config": null}`` for every dataset: datamill runs no fine-tune jobs yet, so no dataset has one.
Both answer 404 for a dataset the key's tenant does not have.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from datamill.server.auth import Context, CurrentTenant
from datamill.server.compat.adaption_models import ErrorPublic

_ERRORS: dict[int | str, dict[str, object]] = {code: {"model": ErrorPublic} for code in (401, 404)}

router = APIRouter(tags=["datasets: publish"], responses=_ERRORS)


class ExportLinksPublic(BaseModel):
    huggingface: str | None = Field(None, description="The Hub URL of the latest publish to Hugging Face.")
    kaggle: str | None = Field(None, description="Always null: datamill does not publish to Kaggle.")
    google_sheets: str | None = Field(None, description="Always null: datamill does not export to Sheets.")
    paths: list[str] = Field(description="Every local or fsspec path the dataset was published to.")


class BestLaunchConfigPublic(BaseModel):
    best_job_config: dict[str, Any] | None


@router.get("/datasets/{dataset_id}/export-links", response_model=ExportLinksPublic)
def get_export_links(dataset_id: str, tenant: CurrentTenant, context: Context) -> ExportLinksPublic:
    """Where the dataset was published: the latest Hub URL, and every path."""
    return ExportLinksPublic(**context.exports.links(tenant.id, dataset_id))


@router.get("/datasets/{dataset_id}/finetune/best-launch-config", response_model=BestLaunchConfigPublic)
def get_best_launch_config(
    dataset_id: str, tenant: CurrentTenant, context: Context
) -> BestLaunchConfigPublic:
    """The launch settings of the dataset's best fine-tune job: null, datamill runs no fine-tune jobs yet."""
    context.datasets.get(tenant.id, dataset_id)
    return BestLaunchConfigPublic(best_job_config=None)
