"""The Adaption-compatible API (Adaption API): dataset routes, with the upload routes mounted first.

Every handler takes the tenant from the bearer key and calls a service; another tenant's dataset id answers
404 exactly like an unknown one. Runs, downloads of their output and evaluations are in `adaption_runs`.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from datamill.server.auth import Context, CurrentTenant
from datamill.server.compat import adaption_uploads
from datamill.server.compat.adaption_models import (
    DatasetDeletePublic,
    DatasetListItemPublic,
    DatasetListPublic,
    DatasetPublic,
    DatasetStatusPublic,
    ErrorDataPublic,
    ErrorPublic,
    ProgressPublic,
)
from datamill.services.datasets.catalog import DatasetView
from datamill.services.datasets.listing import parse_list_query

_ERRORS: dict[int | str, dict[str, object]] = {code: {"model": ErrorPublic} for code in (400, 401, 404)}

router = APIRouter(prefix="/api/v1")
# Static /datasets/upload/* paths first, so they are never read as a dataset id.
router.include_router(adaption_uploads.router)
datasets = APIRouter(tags=["datasets"], responses=_ERRORS)


def dataset_public(view: DatasetView) -> DatasetPublic:
    """The wire ``Dataset`` of a dataset."""
    return DatasetPublic(
        dataset_id=view.id,
        kind=view.kind,
        source_dataset_id=view.source_dataset_id,
        name=view.name,
        status=view.status,
        created_at=view.created_at,
        updated_at=view.updated_at,
        row_count=view.row_count,
        configured_column_mapping=view.configured_column_mapping,
        evaluation_summary=view.evaluation_summary,
        run_id=view.run_id,
        progress=ProgressPublic(**view.progress) if view.progress else None,
        error_data=ErrorDataPublic(**view.error_data) if view.error_data else None,
        image_column_formats=view.image_column_formats,
    )


@datasets.get("/datasets", response_model=DatasetListPublic)
def list_datasets(
    tenant: CurrentTenant,
    context: Context,
    limit: str | None = None,
    cursor: str | None = None,
    status: str | None = None,
    q: str | None = None,
    created_after: str | None = None,
    created_before: str | None = None,
    sort: str | None = None,
    sort_direction: str | None = None,
    type_: Annotated[str | None, Query(alias="type")] = None,
    created_by_user_id: str | None = None,
) -> DatasetListPublic:
    """List datasets a page at a time: pass ``next_cursor`` back as ``cursor`` with the same filters.

    ``created_by_user_id`` is accepted and ignored: datamill keys belong to tenants, not users.
    """
    query = parse_list_query(
        {
            "limit": limit,
            "cursor": cursor,
            "status": status,
            "q": q,
            "created_after": created_after,
            "created_before": created_before,
            "sort": sort,
            "sort_direction": sort_direction,
            "type": type_,
        }
    )
    page = context.datasets.list(tenant.id, query)
    items = [
        DatasetListItemPublic(
            dataset_id=v.id,
            name=v.name,
            status=v.status,
            updated_at=v.updated_at,
            created_at=v.created_at,
            row_count=v.row_count,
            description=v.description,
        )
        for v in page.items
    ]
    return DatasetListPublic(datasets=items, next_cursor=page.next_cursor)


@datasets.get("/datasets/{dataset_id}", response_model=DatasetPublic)
def get_dataset(dataset_id: str, tenant: CurrentTenant, context: Context) -> DatasetPublic:
    """One dataset."""
    return dataset_public(context.datasets.get(tenant.id, dataset_id))


@datasets.get("/datasets/{dataset_id}/status", response_model=DatasetStatusPublic)
def get_status(dataset_id: str, tenant: CurrentTenant, context: Context) -> DatasetStatusPublic:
    """The status a poller needs: status, row count, progress and error."""
    full = dataset_public(context.datasets.get(tenant.id, dataset_id))
    return DatasetStatusPublic(
        dataset_id=full.dataset_id,
        status=full.status,
        row_count=full.row_count,
        progress=full.progress,
        error_data=full.error_data,
    )


@datasets.delete("/datasets/{dataset_id}", response_model=DatasetDeletePublic)
def delete_dataset(dataset_id: str, tenant: CurrentTenant, context: Context) -> DatasetDeletePublic:
    """Soft-delete a dataset; 409 while a run is processing it."""
    context.datasets.delete(tenant.id, dataset_id)
    return DatasetDeletePublic(message=f"Dataset {dataset_id} deleted")


router.include_router(datasets)
