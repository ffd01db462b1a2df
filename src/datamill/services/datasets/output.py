"""A dataset's rows as Arrow tables: its own files, or the finished output of its run.

Combine reads the sources' own files; custom evaluations read a run's output when there is one (original and
enhanced columns, judged before and after) and the dataset's own rows otherwise; publish reads the *finished
output* (`DatasetOutputs.output_of`):

| dataset status                 | finished output                                            |
|--------------------------------|------------------------------------------------------------|
| ``succeeded``, with a run      | the run's output                                           |
| ``succeeded``, no run          | its own files: a raw or combined dataset, trainable as is  |
| ``running``                    | none yet: `ConflictError` (409)                            |
| anything else                  | none: `NotReadyError` (422)                                |

Where a run's output lives is the seam with the run worker, behind the `RunOutputs` protocol. The default,
`CheckpointRunOutputs`, reads ``<data_dir>/runs/<run_id>/`` (or the run's prefix under
``DATAMILL_RUN_DATA_URL`` on object storage) in the checkpoint layout through
`datamill.runners.outputs` (``manifest.json``, ``parts/*.parquet``), plus ``request.json`` (the run's request)
and ``evaluation.json`` (its quality report) when they are there, for dataset cards.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import pyarrow as pa

from datamill.dataio import open_dataset
from datamill.dataio.folder import Folder
from datamill.runners import outputs
from datamill.runners.run_files import run_location
from datamill.services.datasets.catalog import DatasetView
from datamill.services.errors import ConflictError, NotReadyError
from datamill.store import BlobStore, DatasetFile, Store
from datamill.store import datasets as repo

#: A fresh pass over some rows, as tables; each call starts again from the first row.
TableSource = Callable[[], Iterator[pa.Table]]


@dataclass(frozen=True)
class RunOutput:
    """The rows a run wrote, and what produced them."""

    run_id: str
    row_count: int
    tables: TableSource
    request: dict[str, Any] | None = None
    evaluation: dict[str, Any] | None = None


class RunOutputs(Protocol):
    """Finds the output of a run."""

    def find(self, run_id: str) -> RunOutput | None:
        """The run's output, or None when it has none (yet)."""
        ...


@dataclass(frozen=True)
class DatasetRows:
    """Rows of a dataset, with where they come from.

    Attributes:
        dataset: The dataset.
        row_count: How many rows `tables` yields.
        tables: A fresh pass over the rows.
        run: The run output the rows are, or None for the dataset's own files.
    """

    dataset: DatasetView
    row_count: int
    tables: TableSource
    run: RunOutput | None = None

    def pipeline(self) -> dict[str, Any]:
        """What produced the rows, for a dataset card."""
        if self.run is not None:
            return {"run_id": self.run.run_id, "request": self.run.request}
        info: dict[str, Any] = {"kind": self.dataset.kind, "processing_mode": self.dataset.processing_mode}
        if self.dataset.configured_column_mapping:
            info["column_mapping"] = self.dataset.configured_column_mapping
        if self.dataset.description:
            info["description"] = self.dataset.description
        return info


class CheckpointRunOutputs:
    """Run outputs at their locations (``<data_dir>/runs/<run_id>/``, or under `runs_url`)."""

    def __init__(self, data_dir: Path, runs_url: str | None = None) -> None:
        self._data_dir, self._runs_url = data_dir, runs_url

    def find(self, run_id: str) -> RunOutput | None:
        if "/" in run_id or run_id in ("", ".", ".."):
            return None
        root = run_location(self._data_dir, run_id, self._runs_url)
        files = Folder(root)
        if not files.has("manifest.json"):
            return None
        report = files.read_json("evaluation.json")
        return RunOutput(
            run_id,
            outputs.output_rows(root),
            lambda: outputs.output_tables(root),
            files.read_json("request.json"),
            report.get("quality", report) if report else None,
        )


class DatasetOutputs:
    """Reads datasets' own files from blob storage and their runs' output through `RunOutputs`."""

    def __init__(self, store: Store, blobs: BlobStore, runs: RunOutputs) -> None:
        self._store, self._blobs, self._runs = store, blobs, runs

    def own_rows(self, view: DatasetView) -> DatasetRows:
        """The rows of the dataset's files, in upload order (the dataset must have been read: row_count)."""
        with self._store.session() as session:
            files = repo.files_of(session, view.id)
        return DatasetRows(view, view.row_count or 0, lambda: self._file_tables(files))

    def run_rows(self, view: DatasetView) -> DatasetRows | None:
        """The output of the dataset's run, or None when it has no run or the run left no output."""
        found = self._runs.find(view.run_id) if view.run_id else None
        return DatasetRows(view, found.row_count, found.tables, found) if found else None

    def output_of(self, view: DatasetView) -> DatasetRows:
        """The dataset's finished output (module docstring).

        Raises:
            ConflictError: A run is processing the dataset.
            NotReadyError: The dataset has no finished output.
        """
        if view.status == "running":
            raise ConflictError(
                f"dataset {view.id!r} is being processed; try again when its run has finished"
            )
        if view.status != "succeeded":
            raise NotReadyError(_not_ready(view))
        if view.run_id is None:
            return self.own_rows(view)
        rows = self.run_rows(view)
        if rows is None:
            raise NotReadyError(f"the output of run {view.run_id!r} of dataset {view.id!r} is not available")
        return rows

    def _file_tables(self, files: list[DatasetFile]) -> Iterator[pa.Table]:
        for file in files:
            with (
                self._blobs.local_path(file.blob_key) as path,
                open_dataset(path, format=file.file_format) as r,
            ):
                for batch in r:
                    yield pa.Table.from_batches([batch])


def _not_ready(view: DatasetView) -> str:
    if view.status == "awaiting_input":
        return (
            f"dataset {view.id!r} has no finished output: start a run with datasets.adapt, or upload it with "
            "processing_mode='raw' to use it as it is"
        )
    if view.status == "failed":
        reason = (view.error_data or {}).get("message")
        return f"dataset {view.id!r} has no finished output: it failed ({reason})"
    return f"dataset {view.id!r} has no finished output yet (status {view.status})"


def unified_schema(tables: TableSource) -> pa.Schema | None:
    """One schema for every table of a pass (types widened where they differ), or None when there are none.

    Raises:
        pyarrow.ArrowTypeError: Two tables give a column types that cannot be merged (a number and a list).
    """
    schemas = [table.schema for table in tables()]
    return pa.unify_schemas(schemas, promote_options="permissive") if schemas else None
