"""Adaption API AutoScientist routes: start a train-and-evaluate loop, list, get, cancel, download.

``POST /autoscientist`` answers the ``pending`` run at once; a worker runs the loop
(`datamill.services.jobs.autoscientist`), so poll ``get`` (the SDK's ``wait_for_completion``) until
``succeeded``, ``failed`` or ``cancelled``. ``download`` streams the best adapter so far as a gzip-compressed
tar (`datamill.training.artifact`). The static ``/autoscientist/models`` and
``/autoscientist/recommend-hyperparams`` routes (`adaption_catalog`) are registered first.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from datamill.server.auth import Context, CurrentTenant, JsonBody
from datamill.server.compat.adaption_models import ErrorPublic

_ERRORS: dict[int | str, dict[str, object]] = {
    code: {"model": ErrorPublic} for code in (400, 401, 402, 404, 409, 422, 501)
}
_CHUNK = 1 << 20

router = APIRouter(tags=["training"], responses=_ERRORS)


class AutoscientistRunPublic(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: str
    dataset_id: str | None
    model: str | None
    status: str = Field(description="pending, running, succeeded, failed or cancelled.")
    created_at: dt.datetime
    completed_at: dt.datetime | None
    iterations_completed: int
    max_iterations: int
    target_win_rate: float
    best_win_rate: float | None
    training_method: str
    best_hyperparams: dict[str, Any] | None
    column_mapping: dict[str, Any] | None
    download_available: bool
    error: str | None
    data_format: str | None = None
    best_iteration: int | None = None
    best_win_rate_interval: list[float] | None = Field(None, description="95% Wilson interval of the best.")
    ended_because: str | None = Field(None, description="target_reached, max_iterations or search_exhausted.")
    iterations: list[dict[str, Any]] = Field(default_factory=list, description="Every finished iteration.")


class AutoscientistRunListPublic(BaseModel):
    runs: list[AutoscientistRunPublic]
    next_cursor: str | None


@router.post("/autoscientist", response_model=AutoscientistRunPublic | dict[str, Any])
def create_run(tenant: CurrentTenant, context: Context, body: JsonBody = None) -> dict[str, Any]:
    """Start an AutoScientist loop on a finished dataset (``estimate: true``: only the quote)."""
    return context.autoscientist.create(tenant.id, body)


@router.get("/autoscientist", response_model=AutoscientistRunListPublic)
def list_runs(
    tenant: CurrentTenant,
    context: Context,
    limit: str | None = None,
    cursor: str | None = None,
    dataset_id: str | None = None,
) -> AutoscientistRunListPublic:
    """The tenant's runs, newest first, a page at a time (``next_cursor``)."""
    runs, next_cursor = context.autoscientist.list(tenant.id, limit, cursor, dataset_id)
    return AutoscientistRunListPublic(
        runs=[AutoscientistRunPublic(**run) for run in runs], next_cursor=next_cursor
    )


@router.get("/autoscientist/{experiment_id}", response_model=AutoscientistRunPublic)
def get_run(experiment_id: str, tenant: CurrentTenant, context: Context) -> dict[str, Any]:
    """One run, with every finished iteration."""
    return context.autoscientist.get(tenant.id, experiment_id)


@router.post("/autoscientist/{experiment_id}/cancel", response_model=AutoscientistRunPublic)
def cancel_run(experiment_id: str, tenant: CurrentTenant, context: Context) -> dict[str, Any]:
    """Cancel a pending or running run; the best adapter so far stays downloadable."""
    return context.autoscientist.cancel(tenant.id, experiment_id)


@router.get(
    "/autoscientist/{experiment_id}/download",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/gzip": {}}, "description": "The best adapter, tar.gz"}},
)
def download_run(experiment_id: str, tenant: CurrentTenant, context: Context) -> StreamingResponse:
    """The best trained adapter so far, as a gzip-compressed tar (load it with peft)."""
    found = context.autoscientist.download(tenant.id, experiment_id)
    handle = context.blobs.open_read(found.blob_key)

    def chunks() -> Iterator[bytes]:
        with handle:
            while chunk := handle.read(_CHUNK):
                yield chunk

    return StreamingResponse(
        chunks(),
        media_type="application/gzip",
        headers={"Content-Disposition": f'attachment; filename="{found.filename}"'},
    )
