"""Combine datasets: one new dataset (kind ``combined``) holding every row of its sources, in order.

`CombineService.validate` is the dry run (``combine/validate``): it writes nothing and reports the issues of
the proposed merge (`api.combine_checks`). `CombineService.create` (``combine``) refuses a merge with any
error (400, one issue per problem), reads each source's own files with `datamill.dataio`, writes the union as
one Parquet file to blob storage (columns in a schema every source fits, missing ones null), and creates the
dataset with that file; the normal ingest then reads it and settles its status, exactly as after an upload.
When every source is a raw dataset with one column mapping, the combined dataset is raw with that mapping
(trainable as is); otherwise it waits for ``datasets.adapt``.

Idempotency: the ``Idempotency-Key`` header (one is generated when absent) is recorded with the new dataset
in one transaction; a replay with the same key and request answers the same ``dataset_id`` and writes
nothing, and the same key with a different request is refused (422, `datamill.services.idempotency`).
"""

from __future__ import annotations

import hashlib
import json
import secrets
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
from sqlalchemy.exc import IntegrityError

from datamill.core.errors import DataFormatError, Issue, ValidationError
from datamill.core.fields import join
from datamill.dataio import open_writer
from datamill.pipelines.checkpoint import conform
from datamill.services.datasets.catalog import DatasetService, DatasetView
from datamill.services.datasets.combine_checks import (
    CombineIssue,
    check_columns,
    check_ids,
    check_sources,
    combined_mapping,
    error,
    not_ready,
)
from datamill.services.datasets.output import DatasetOutputs, unified_schema
from datamill.services.datasets.upload_checks import check_name, safe_file_name
from datamill.services.errors import NotFoundError
from datamill.services.idempotency import recorded
from datamill.store import BlobInfo, BlobStore, Dataset, DatasetFile, Store, utcnow
from datamill.store import idempotency as keys
from datamill.store.ids import new_id

IDEMPOTENCY_SCOPE = "combine"
MAX_KEY_LENGTH = 255


@dataclass(frozen=True)
class CombineReport:
    """The answer of a dry run; `schema` and `sources` are set when the merge is compatible."""

    compatible: bool
    issues: list[CombineIssue]
    training_type: str | None = None
    total_estimated_rows: int | None = None
    sources: list[DatasetView] = field(default_factory=list)
    schema: pa.Schema | None = None


class CombineService:
    """Validates and performs merges over one `Store`, `BlobStore` and the datasets' rows."""

    def __init__(
        self,
        store: Store,
        blobs: BlobStore,
        outputs: DatasetOutputs,
        *,
        on_created: Callable[[str], None] = lambda _dataset_id: None,
    ) -> None:
        self._store, self._blobs, self._outputs = store, blobs, outputs
        self._datasets = DatasetService(store)
        self._on_created = on_created

    def validate(self, tenant_id: str, dataset_ids: Sequence[str]) -> CombineReport:
        """Check a proposed merge without writing anything; unknown ids are `dataset_not_found` issues."""
        distinct, issues = check_ids(list(dataset_ids))
        views = []
        for dataset_id in distinct:
            try:
                views.append(self._datasets.get(tenant_id, dataset_id))
            except NotFoundError:
                issues.append(error("dataset_not_found", f"no dataset {dataset_id}", dataset_id=dataset_id))
        issues += [issue for view in views if (issue := not_ready(view)) is not None]
        if any(i.blocking for i in issues):
            return CombineReport(False, issues)
        kind, found = check_sources(views)
        schema, column_issues = check_columns({v.id: self._schema(v) for v in views})
        issues += found + column_issues
        if schema is None:
            return CombineReport(False, issues)
        rows = sum(v.row_count or 0 for v in views)
        return CombineReport(True, issues, kind, rows, views, schema)

    def create(
        self, tenant_id: str, dataset_ids: Sequence[str], name: str, idempotency_key: str | None
    ) -> str:
        """Combine the datasets into a new one and return its id (the original id on a replay).

        Raises:
            NotFoundError: A source is not a dataset of this tenant.
            ValidationError: A bad name or key, a key reused for another request, or a merge with errors.
        """
        name = check_name(name, "name")
        key = _check_key(idempotency_key) or secrets.token_urlsafe(18)
        digest = hashlib.sha256(json.dumps([list(dataset_ids), name]).encode()).hexdigest()
        replay = self._replay(tenant_id, key, digest)
        if replay is not None:
            return replay
        for dataset_id in dict.fromkeys(dataset_ids):
            self._datasets.get(tenant_id, dataset_id)  # NotFoundError (404) before any other check
        report = self.validate(tenant_id, dataset_ids)
        if not report.compatible or report.schema is None:
            raise ValidationError(_as_issues(report.issues, list(dataset_ids)))
        dataset_id = new_id("ds")
        blob_key = f"combined/{tenant_id}/{dataset_id}/{safe_file_name(name, 'parquet')}"
        info = self._write(report, blob_key)
        try:
            with self._store.session() as session:
                session.add(_dataset_row(dataset_id, tenant_id, name, report))
                session.flush()  # the file row refers to the dataset row
                session.add(_file_row(dataset_id, name, info))
                keys.add_record(session, tenant_id, IDEMPOTENCY_SCOPE, key, digest, dataset_id)
        except IntegrityError:  # a concurrent request with the same key won; answer what it made
            self._blobs.delete(blob_key)
            winner = self._replay(tenant_id, key, digest)
            if winner is None:
                raise
            return winner
        self._on_created(dataset_id)
        return dataset_id

    def _replay(self, tenant_id: str, key: str, digest: str) -> str | None:
        with self._store.session() as session:
            return recorded(
                session, tenant_id, IDEMPOTENCY_SCOPE, key, digest, field="Idempotency-Key", what="combine"
            )

    def _schema(self, view: DatasetView) -> pa.Schema:
        try:
            schema = unified_schema(self._outputs.own_rows(view).tables)
        except (DataFormatError, pa.ArrowException) as exc:
            raise ValidationError.of("dataset_ids", f"dataset {view.id} cannot be read: {exc}") from exc
        return schema if schema is not None else pa.schema([])

    def _write(self, report: CombineReport, blob_key: str) -> BlobInfo:
        assert report.schema is not None  # checked by the caller
        with tempfile.TemporaryDirectory(prefix="datamill-combine-") as tmp:
            path = Path(tmp) / "combined.parquet"
            with open_writer(path, format="parquet") as writer:
                for view in report.sources:
                    for table in self._outputs.own_rows(view).tables():
                        writer.write_batch(conform(table, report.schema))
                if writer.rows_written == 0:  # sources with no rows still give a file with the columns
                    writer.write_batch(report.schema.empty_table())
            return _copy_to_blob(self._blobs, path, blob_key)


def _check_key(key: str | None) -> str | None:
    if key is None or not key.strip():
        return None
    if len(key) > MAX_KEY_LENGTH:
        raise ValidationError.of("Idempotency-Key", f"must be at most {MAX_KEY_LENGTH} characters")
    return key.strip()


def _as_issues(issues: list[CombineIssue], dataset_ids: list[str]) -> list[Issue]:
    """The blocking issues as request issues, each naming the ``dataset_ids`` entry it is about."""
    out = []
    for issue in issues:
        if issue.blocking:
            ident = issue.extra.get("dataset_id")
            where = join("dataset_ids", dataset_ids.index(ident)) if ident in dataset_ids else "dataset_ids"
            out.append(Issue(where, f"{issue.code}: {issue.message}"))
    return out


def _copy_to_blob(blobs: BlobStore, path: Path, key: str) -> BlobInfo:
    writer = blobs.open_writer(key)
    try:
        with path.open("rb") as source:
            while chunk := source.read(1 << 20):
                writer.write(chunk)
        return writer.commit()
    except BaseException:
        writer.abort()
        raise


def _dataset_row(dataset_id: str, tenant_id: str, name: str, report: CombineReport) -> Dataset:
    now, mapping = utcnow(), combined_mapping(report.sources)
    return Dataset(
        id=dataset_id,
        tenant_id=tenant_id,
        name=name,
        description=f"Combined from {', '.join(v.id for v in report.sources)}",
        kind="combined",
        status="pending",
        ingest_state="uploaded",  # the ingest worker reads it next, as after an upload
        processing_mode="raw" if mapping else "adapt",
        source_column_mapping=mapping,
        created_at=now,
        updated_at=now,
    )


def _file_row(dataset_id: str, name: str, info: BlobInfo) -> DatasetFile:
    return DatasetFile(
        dataset_id=dataset_id,
        position=0,
        file_name=safe_file_name(name, "parquet"),
        file_format="parquet",
        blob_key=info.key,
        size_bytes=info.size,
        sha256=info.sha256,
    )


def dump_report(report: CombineReport) -> dict[str, Any]:
    """The wire shape of a dry run (``combine/validate``)."""
    return {
        "compatible": report.compatible,
        "training_type": report.training_type,
        "total_estimated_rows": report.total_estimated_rows,
        "issues": [issue.to_dict() for issue in report.issues],
    }
