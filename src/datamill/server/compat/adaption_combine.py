"""Adaption API combine routes (Adaption API): merge datasets, and the dry run that checks a merge.

``POST /datasets/combine`` takes its idempotency key from the ``Idempotency-Key`` HTTP header (the only
endpoint that does; the Adaption API). These static paths are registered before ``/datasets/{dataset_id}``.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header
from pydantic import BaseModel, ConfigDict, Field

from datamill.server.auth import Context, CurrentTenant
from datamill.server.compat.adaption_models import ErrorPublic
from datamill.services.datasets.combine import dump_report

_ERRORS: dict[int | str, dict[str, object]] = {code: {"model": ErrorPublic} for code in (400, 401, 404)}

router = APIRouter(tags=["datasets: combine"], responses=_ERRORS)


class CombineCreate(BaseModel):
    model_config = ConfigDict(extra="ignore")

    dataset_ids: list[str] = Field(description="The datasets to merge, in the order their rows go.")
    name: str = Field(description="Name of the new dataset.")


class CombineValidateCreate(BaseModel):
    model_config = ConfigDict(extra="ignore")

    dataset_ids: list[str]


class CombineCreatePublic(BaseModel):
    dataset_id: str


class CombineIssuePublic(BaseModel):
    """One finding; code-specific details (dataset_id, columns, types, ...) ride along as extra keys."""

    model_config = ConfigDict(extra="allow")

    code: str
    level: str
    message: str


class CombineValidatePublic(BaseModel):
    compatible: bool
    training_type: str | None
    total_estimated_rows: int | None
    issues: list[CombineIssuePublic]


@router.post("/datasets/combine", status_code=201, response_model=CombineCreatePublic)
def combine_datasets(
    body: CombineCreate,
    tenant: CurrentTenant,
    context: Context,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> CombineCreatePublic:
    """Merge datasets into a new one (kind ``combined``); a replay of the same key answers the same id.

    Sources must be this tenant's datasets (else 404), read, and column-compatible (else 400 naming each
    problem). The new dataset is ``pending`` until its file has been read.
    """
    dataset_id = context.combine.create(tenant.id, body.dataset_ids, body.name, idempotency_key)
    return CombineCreatePublic(dataset_id=dataset_id)


@router.post("/datasets/combine/validate", response_model=CombineValidatePublic)
def validate_combine(
    body: CombineValidateCreate, tenant: CurrentTenant, context: Context
) -> CombineValidatePublic:
    """Check whether datasets can be merged, without writing anything: ``compatible`` and the ``issues``."""
    return CombineValidatePublic.model_validate(
        dump_report(context.combine.validate(tenant.id, body.dataset_ids))
    )
