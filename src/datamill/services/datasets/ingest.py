"""Ingest: read the files of an uploaded dataset and decide its status.

After an upload is completed, `IngestService.process` profiles each file (columns, rows, image columns),
then settles the dataset:

- ``processing_mode: adapt`` → ``awaiting_input`` (it waits for ``datasets.adapt``);
- ``processing_mode: raw`` → ``succeeded`` with the mapping as ``configured_column_mapping``, or ``failed``
  when the mapping names a column the file lacks;
- an unreadable file, or batch files whose columns differ → ``failed``.

A failure is recorded as ``error_data {message, code, level}`` with an E01xx code of
`datamill.core.error_codes` (a file cannot be read, a mapped column is missing, a batch's files differ in
columns, an internal error).

`BackgroundIngest` runs `process` on worker threads. The dataset's ``ingest_state`` stays ``uploaded`` until
processing ends, so datasets left behind by a stop or a crash are processed again on the next start.
"""

from __future__ import annotations

import logging
from pathlib import PurePosixPath
from typing import Any

from datamill.core.error_codes import ErrorCode, error_data
from datamill.core.errors import DataFormatError, ValidationError
from datamill.core.mapping import check_columns
from datamill.core.source_mapping import parse_source_column_mapping
from datamill.services.datasets.profile import FileProfile, ReadBudget, profile_file
from datamill.services.datasets.queue import DatasetQueue
from datamill.store import BlobStore, DatasetFile, Store, utcnow
from datamill.store import datasets as repo

log = logging.getLogger(__name__)


class IngestFailure(Exception):
    """Why a dataset cannot be ingested, as its error_data code and message."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        self.code = code
        self.message = message
        super().__init__(f"{code}: {message}")


def _format_error(file: DatasetFile, exc: DataFormatError) -> IngestFailure:
    # The blob's server-side path means nothing to the user (and should not leak): name the file as the
    # blob key's last part, which is the uploaded name with the format's extension.
    name = PurePosixPath(file.blob_key).name
    where = name if exc.line is None else f"{name}, line {exc.line}"
    return IngestFailure(ErrorCode.FILE_UNREADABLE, f"cannot read {where}: {exc.reason}")


class IngestService:
    """Reads uploaded datasets; see the module docstring."""

    def __init__(self, store: Store, blobs: BlobStore, budget: ReadBudget | None = None) -> None:
        self._store, self._blobs = store, blobs
        self._budget = budget or ReadBudget()

    def waiting(self) -> list[str]:
        """Ids of the datasets whose upload is complete but not yet read."""
        with self._store.session() as session:
            return repo.dataset_ids_in_ingest_state(session, "uploaded")

    def tenant_of(self, dataset_id: str) -> str | None:
        """The dataset's tenant, for the fair queue (None when it was deleted)."""
        with self._store.session() as session:
            return repo.tenant_of_dataset(session, dataset_id)

    def process(self, dataset_id: str) -> None:
        """Read one dataset's files and settle its status; a dataset not waiting to be read is left alone."""
        with self._store.session() as session:
            row = repo.get_dataset_any_tenant(session, dataset_id)
            if row is None or row.deleted_at is not None or row.ingest_state != "uploaded":
                return
            files, mode, mapping = (
                repo.files_of(session, dataset_id),
                row.processing_mode,
                row.source_column_mapping,
            )
        profile: FileProfile | None = None
        try:
            profile = self._profile(files)
            outcome = _settle(profile, mode, mapping)
        except IngestFailure as failure:
            outcome = _failed(failure.code, failure.message)
        except Exception:
            log.exception("ingest of dataset %s failed", dataset_id)
            outcome = _failed(
                ErrorCode.INGEST_INTERNAL, "internal error while reading the file; the server log has details"
            )
        if profile is not None:
            outcome |= {
                "columns": profile.columns,
                "row_count": profile.row_count,
                "image_column_formats": profile.image_columns or None,
            }
        self._save(dataset_id, outcome)

    def _profile(self, files: list[DatasetFile]) -> FileProfile:
        profiles = []
        for file in files:
            try:
                with self._blobs.local_path(file.blob_key) as path:
                    profiles.append(profile_file(path, file.file_format, self._budget))
            except DataFormatError as exc:
                raise _format_error(file, exc) from exc
        first = profiles[0]
        for file, other in zip(files[1:], profiles[1:], strict=True):
            if set(other.columns) != set(first.columns):
                raise IngestFailure(
                    ErrorCode.BATCH_COLUMNS_DIFFER,
                    f"the files do not share one set of columns: {files[0].file_name} has {first.columns}, "
                    f"{file.file_name} has {other.columns}",
                )
        images = {k: v for p in profiles for k, v in p.image_columns.items()}
        return FileProfile(first.columns, sum(p.row_count for p in profiles), images)

    def _save(self, dataset_id: str, values: dict[str, Any]) -> None:
        with self._store.session() as session:
            row = repo.get_dataset_any_tenant(session, dataset_id)
            if row is None:
                return
            for key, value in values.items():
                setattr(row, key, value)
            row.ingest_state, row.updated_at = "ready", utcnow()


def _failed(code: ErrorCode, message: str) -> dict[str, Any]:
    return {"status": "failed", "error_data": error_data(code, message)}


def _settle(profile: FileProfile, mode: str, mapping: dict[str, Any] | None) -> dict[str, Any]:
    if mode != "raw":
        return {"status": "awaiting_input", "error_data": None}
    parsed = parse_source_column_mapping(mapping)
    try:
        check_columns(parsed, profile.columns)
    except ValidationError as exc:
        raise IngestFailure(
            ErrorCode.MAPPING_COLUMN_MISSING, "; ".join(f"{i.field}: {i.reason}" for i in exc.issues)
        ) from exc
    return {"status": "succeeded", "configured_column_mapping": parsed.to_dict(), "error_data": None}


class BackgroundIngest(DatasetQueue):
    """Runs `IngestService.process` on a few worker threads; `start` also re-queues unfinished datasets.

    A dataset queued after `close` stays ``uploaded`` and is read on the next start.
    """

    def __init__(self, ingest: IngestService, *, workers: int = 2, max_per_tenant: int | None = None) -> None:
        super().__init__(
            ingest, workers=workers, name="ingest", resumes="read", max_per_tenant=max_per_tenant
        )
