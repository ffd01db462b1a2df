"""Adaption API publish route (Adaption API): the dataset's finished output and a card, to a target.

Targets: ``huggingface`` (``target_spec.repo_id``) and ``local``/``fsspec`` (``target_spec.path``) when the
operator configured them (else 400 naming the setting); ``kaggle`` answers 501. A destination that refuses
the files or cannot be reached answers 502. Like every error here, these carry ``x-should-retry: false``, so
the SDK makes exactly one attempt.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from datamill.server.auth import Context, CurrentTenant
from datamill.server.compat.adaption_models import ErrorPublic
from datamill.server.errors import error_response
from datamill.services.datasets.publish.service import TargetNotImplemented
from datamill.services.datasets.publish.targets import PublishUpstreamError

_ERRORS: dict[int | str, dict[str, object]] = {
    code: {"model": ErrorPublic} for code in (400, 401, 404, 409, 422, 501, 502)
}

router = APIRouter(tags=["datasets: publish"], responses=_ERRORS)


class PublishCreate(BaseModel):
    model_config = ConfigDict(extra="ignore")

    target: str = Field(description="huggingface, local or fsspec (kaggle answers 501).")
    target_spec: dict[str, Any] | None = Field(
        None, description="huggingface: repo_id, private; local/fsspec: path. Any: file_format."
    )


class PublishPublic(BaseModel):
    publish_id: str
    status: str
    message: str | None
    location: str = Field(description="Where the files are: the repo URL or the path.")
    files: list[str]


@router.post("/datasets/{dataset_id}/publish", response_model=PublishPublic)
def publish_dataset(
    dataset_id: str, body: PublishCreate, tenant: CurrentTenant, context: Context
) -> PublishPublic | JSONResponse:
    """Publish the dataset's finished output (its run's output, or a raw or combined dataset's rows)."""
    try:
        done = context.publish.publish(tenant.id, dataset_id, body.target, body.target_spec)
    except TargetNotImplemented as exc:
        return error_response(501, str(exc))
    except PublishUpstreamError as exc:
        return error_response(502, str(exc))
    return PublishPublic(
        publish_id=done.publish_id,
        status=done.status,
        message=done.message,
        location=done.location,
        files=done.files,
    )
