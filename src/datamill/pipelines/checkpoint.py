"""Batch checkpoints: every finished batch is saved, so an interrupted run resumes where it stopped.

A run's checkpoint is a folder (`datamill.dataio.folder.Folder`: a local directory by default, or any fsspec
URL such as ``s3://bucket/datamill/runs/<run_id>``, so any worker on any machine resumes it). It holds
``manifest.json`` (the run's fingerprint), ``parts/<index>.parquet`` (the output rows of each finished batch)
and ``rejected/<index>.jsonl`` (its rejected rows, each with the step and the reason). Each file lands whole
or not at all, and a batch's rejections are written before its part, so a part present means its batch is
done.

`CheckpointFiles` only reads: the output (one schema unified over the parts), the row count (from the parts'
footers) and the rejected rows, so readers never disturb a run in progress. `Checkpoint` opens the folder
for a run: a folder whose fingerprint does not match (the input, request, model or options changed) is
cleared and the run starts over.
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Sequence
from typing import Any, Protocol

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from datamill.dataio.folder import Folder, Location

_MANIFEST = "manifest.json"


class BatchCheckpoint(Protocol):
    """Where a run keeps its finished batches."""

    def completed(self) -> set[int]: ...

    def save(self, index: int, rows: list[dict[str, Any]], rejections: list[dict[str, Any]]) -> None: ...

    def iter_output(self, *, internal: bool = False) -> Iterator[pa.Table]: ...

    def output_rows(self) -> int: ...

    def iter_rejections(self) -> Iterator[dict[str, Any]]: ...


class CheckpointFiles:
    """The saved batches of a run, read-only; see the module docstring."""

    def __init__(self, location: Location) -> None:
        self.location = location
        self.folder = Folder(location)

    def completed(self) -> set[int]:
        return {int(path.rsplit("/", 1)[-1].split(".")[0]) for path in self._parts()}

    def opened(self) -> bool:
        """Whether a run opened this checkpoint: its ``manifest.json`` is there (written before any batch)."""
        return self.folder.has(_MANIFEST)

    def output_schema(self) -> pa.Schema | None:
        """The public schema of the output (internal ``_`` columns left out); None before any row exists."""
        paths = self._nonempty_parts()
        return _public(_unified(self.folder, paths)) if paths else None

    def iter_output(self, *, internal: bool = False) -> Iterator[pa.Table]:
        """The saved rows in batch order, every table conformed to one schema unified over all parts.

        Parts are typed batch by batch, so a column that is all-null in one batch (e.g. no row grounded) and a
        list of structs in another is unified here, before any writer fixes its schema. Parts keep the row
        identity columns (``_row``, ``_variant``) for the evaluation; they are dropped unless ``internal``.
        """
        paths = self._nonempty_parts()
        if not paths:
            return
        schema = _unified(self.folder, paths)
        if not internal:
            schema = _public(schema)
        for path in paths:
            yield conform(self._read(path), schema)

    def iter_columns(self, names: Sequence[str]) -> Iterator[pa.Table]:
        """The saved rows' columns among ``names`` (internal ones too), part by part.

        Only those columns are read; a part that has none of them is skipped.
        """
        for path in self._nonempty_parts():
            with self.folder.open(path) as handle, pq.ParquetFile(handle) as part:
                present = [name for name in names if name in part.schema_arrow.names]
                if present:
                    yield part.read(columns=present, use_threads=False)

    def output_rows(self) -> int:
        """How many output rows the saved parts hold, from their footers (no rows are read)."""
        return sum(self._metadata(path).num_rows for path in self._parts())

    def iter_rejections(self) -> Iterator[dict[str, Any]]:
        """The rejected rows of the saved batches in batch order: ``step``, ``reason``, the row's fields."""
        for path in self.folder.list("rejected", ".jsonl"):
            for line in self.folder.cat(path).splitlines():
                if line.strip():
                    yield orjson.loads(line)

    def _parts(self) -> list[str]:
        return self.folder.list("parts", ".parquet")

    def _nonempty_parts(self) -> list[str]:
        return [path for path in self._parts() if self._metadata(path).num_rows]

    def _metadata(self, path: str) -> pq.FileMetaData:
        with self.folder.open(path) as handle:
            return pq.read_metadata(handle)

    def _read(self, path: str) -> pa.Table:
        """One part, read on this thread.

        ``pq.read_table`` goes through the dataset layer and its thread pools, which for a run's many small
        parts costs about 25 MB more peak memory and is no faster.
        """
        with self.folder.open(path) as handle, pq.ParquetFile(handle) as part:
            return part.read(use_threads=False)


class Checkpoint(CheckpointFiles):
    """A run's checkpoint, opened to save batches under `fingerprint`; see the module docstring."""

    def __init__(self, location: Location, fingerprint: str) -> None:
        super().__init__(location)
        self.fingerprint = fingerprint
        manifest = self.folder.read_json(_MANIFEST)
        if manifest is not None and manifest.get("fingerprint") == fingerprint:
            return
        if manifest is not None:
            self.folder.remove()  # the run's input, request, model or options changed: start over
        self.folder.write_json(_MANIFEST, {"fingerprint": fingerprint})

    def save(self, index: int, rows: list[dict[str, Any]], rejections: list[dict[str, Any]]) -> None:
        # Rejections first: the part file is the "batch done" marker, so it must be the last to land.
        lines = b"".join(orjson.dumps(r, default=str) + b"\n" for r in rejections)
        self.folder.put(f"rejected/{index:08d}.jsonl", lines)
        buffer = io.BytesIO()
        pq.write_table(pa.Table.from_pylist(rows) if rows else pa.table({}), buffer)
        self.folder.put(f"parts/{index:08d}.parquet", buffer.getvalue())

    def remove(self) -> None:
        """Delete the checkpoint (after its output was exported)."""
        self.folder.remove()


def _unified(folder: Folder, paths: list[str]) -> pa.Schema:
    schemas = []
    for path in paths:
        with folder.open(path) as handle:
            schemas.append(pq.read_schema(handle))
    return pa.unify_schemas(schemas, promote_options="permissive")


def _public(schema: pa.Schema) -> pa.Schema:
    return pa.schema([f for f in schema if not f.name.startswith("_")])


def conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """``table`` with exactly ``schema``'s columns, in its order and types; missing columns are null."""
    columns = []
    for field in schema:
        if field.name in table.column_names:
            column = table.column(field.name)
            columns.append(column if column.type == field.type else column.cast(field.type))
        else:
            columns.append(pa.nulls(table.num_rows, field.type))
    return pa.Table.from_arrays(columns, schema=schema)
