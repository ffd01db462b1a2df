"""Datasets as a tenant sees them: read one, list them a page at a time, delete one, ask for a download.

Every call takes the tenant id and answers `NotFoundError` for a dataset of another tenant, exactly as for
one that does not exist, so ids never leak across tenants. Part of the dataset lifecycle lives elsewhere:
creating and uploading in `api.uploads`, reading the files in `api.ingest`, runs in `api.runs` (`get` shows
a run's progress and evaluation summary, `run_fields`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import select

from datamill.services.datasets.listing import ListQuery, decode_cursor, encode_cursor
from datamill.services.errors import ConflictError, NotFoundError, NotReadyError
from datamill.store import Dataset, Run, Store, utcnow
from datamill.store import datasets as repo
from datamill.store import runs as runs_repo
from datamill.store.autoscientist import in_progress_on_dataset
from datamill.store.datasets import DatasetFilter, Keyset

#: Statuses during which the pipeline holds the dataset, so it may not be deleted.
BUSY_STATUSES = ("running",)


@dataclass(frozen=True)
class DatasetView:
    """Everything the wire APIs show about a dataset (Adaption API), in plain types."""

    id: str
    name: str
    kind: str
    status: str
    processing_mode: str
    created_at: dt.datetime
    updated_at: dt.datetime
    description: str | None = None
    source_dataset_id: str | None = None
    row_count: int | None = None
    columns: list[str] | None = None
    configured_column_mapping: dict[str, Any] | None = None
    image_column_formats: dict[str, str] | None = None
    error_data: dict[str, Any] | None = None
    run_id: str | None = None
    progress: dict[str, Any] | None = None
    evaluation_summary: dict[str, Any] | None = None

    @classmethod
    def of(cls, row: Dataset) -> DatasetView:
        return cls(
            id=row.id,
            name=row.name,
            kind=row.kind,
            status=row.status,
            processing_mode=row.processing_mode,
            created_at=row.created_at,
            updated_at=row.updated_at,
            description=row.description,
            source_dataset_id=row.source_dataset_id,
            row_count=row.row_count,
            columns=list(row.columns) if row.columns is not None else None,
            configured_column_mapping=row.configured_column_mapping,
            image_column_formats=row.image_column_formats,
            error_data=row.error_data,
            run_id=row.run_id,
        )


def run_fields(run: Run) -> dict[str, Any]:
    """What a dataset shows of its latest run: progress while it is active, the summary once graded."""
    fields: dict[str, Any] = {}
    if run.status in runs_repo.ACTIVE:
        total = run.total_rows
        done = run.processed_rows or 0
        percent = min(100, done * 100 // total) if total else 0
        fields["progress"] = {"percent": percent, "processed_rows": done, "total_rows": total}
    quality = (run.evaluation or {}).get("quality")
    if run.evaluation_status == "succeeded" and isinstance(quality, dict):
        fields["evaluation_summary"] = {k: v for k, v in quality.items() if k != "percentile_after"}
    return fields


@dataclass(frozen=True)
class DatasetPage:
    """One page of a listing; `next_cursor` is None on the last page."""

    items: list[DatasetView]
    next_cursor: str | None


class DatasetService:
    """Reading and deleting a tenant's datasets over one `Store`.

    Args:
        store: The metadata database.
        purge: Removes a deleted dataset's data (by id); None keeps it (tools that only read).
    """

    def __init__(self, store: Store, purge: Callable[[str], None] | None = None) -> None:
        self._store = store
        self._purge = purge

    def get(self, tenant_id: str, dataset_id: str) -> DatasetView:
        """One dataset, with its run's progress and evaluation summary; NotFoundError if there is none."""
        with self._store.session() as session:
            row = repo.get_dataset(session, tenant_id, dataset_id)
            if row is None:
                raise NotFoundError("dataset", dataset_id)
            run = runs_repo.get_run(session, tenant_id, row.run_id) if row.run_id else None
            view = DatasetView.of(row)
        return view if run is None else replace(view, **run_fields(run))

    def list(self, tenant_id: str, query: ListQuery) -> DatasetPage:
        """One page of the tenant's datasets in the query's order, filters applied on every page.

        Raises:
            ValidationError: The cursor is invalid (field ``cursor``).
        """
        filt = DatasetFilter(
            tenant_id=tenant_id,
            statuses=query.statuses,
            kinds=query.kinds,
            text=query.text,
            created_after=query.created_after,
            created_before=query.created_before,
        )
        keyset = Keyset(sort=query.sort, descending=query.descending, after=decode_cursor(query))
        with self._store.session() as session:
            rows = repo.page_datasets(session, filt, keyset, query.limit + 1)
            items = [DatasetView.of(row) for row in rows[: query.limit]]
        next_cursor = None
        if len(rows) > query.limit:  # one extra row fetched tells whether another page exists
            last = items[-1]
            next_cursor = encode_cursor(query, getattr(last, query.sort), last.id)
        return DatasetPage(items=items, next_cursor=next_cursor)

    def delete(self, tenant_id: str, dataset_id: str) -> None:
        """Soft-delete a dataset: it disappears from every read, and its data is purged at once.

        The flagged record stays (its id is never reused); with a `purge` (the server's) the files, upload
        slots and run outputs go right after the flag is committed (`datamill.services.datasets.purge`).

        Raises:
            NotFoundError: No such dataset for this tenant.
            ConflictError: A run is processing it, or a run that has not ended reads its files.
        """
        with self._store.session() as session:
            row = repo.get_dataset(session, tenant_id, dataset_id, for_update=True)
            if row is None:
                raise NotFoundError("dataset", dataset_id)
            if row.status in BUSY_STATUSES:
                raise ConflictError(f"dataset {dataset_id!r} is being processed; delete it when the run ends")
            reader = session.scalar(
                select(Run.id).where(
                    Run.tenant_id == tenant_id,
                    Run.source_dataset_id == dataset_id,
                    Run.status.in_(("queued", "running")),
                )
            )
            reader = reader or in_progress_on_dataset(session, tenant_id, dataset_id)
            if reader is not None:
                raise ConflictError(
                    f"dataset {dataset_id!r} is read by run {reader!r}, which has not ended; delete it when "
                    "the run ends (or cancel the run)"
                )
            row.deleted_at = row.updated_at = utcnow()
        if self._purge is not None:
            self._purge(dataset_id)

    def check_download(self, tenant_id: str, dataset_id: str) -> DatasetView:
        """The dataset, if it has output to download.

        Raises:
            NotFoundError: No such dataset for this tenant.
            NotReadyError: No run has ever started on it, so there is nothing to download.
        """
        view = self.get(tenant_id, dataset_id)
        if view.run_id is None:
            raise NotReadyError(
                f"dataset {dataset_id!r} has no output yet: no run has been started on it "
                "(start one with datasets.adapt)"
            )
        return view
