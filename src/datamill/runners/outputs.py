"""A run's output: the checkpointed Parquet parts at the run's location, read and converted.

A run keeps its output where the pipeline checkpointed it (`datamill.pipelines.checkpoint` layout:
``manifest.json``, ``parts/<batch>.parquet``, ``rejected/<batch>.jsonl``), beside ``request.json`` (the
run's request) and, once evaluated, ``evaluation.json``. A part is complete on disk or absent, so reading
while the run is still going (or after it failed) gives exactly the rows of its finished batches, in input
order. Nothing here writes to the run's location: readers never disturb a run in progress. The location is
``<data_dir>/runs/<run_id>/`` or a prefix on object storage (`datamill.runners.run_files`); every function
here reads either.

`export` converts the output for a download: csv, json and jsonl through `datamill.dataio`'s writers (one
schema unified over all parts, internal columns left out), and ``parquet`` as a gzipped tar of one Parquet
shard per finished batch (``part-00000.parquet``, ...), as the Adaption API serves it. `export_rejections`
gives the rows the run removed, as JSON lines in input order (``row_number``, ``step``, ``reason``, ``row``).
"""

from __future__ import annotations

import io
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from datamill.dataio import open_writer
from datamill.pipelines.checkpoint import conform
from datamill.runners.run_files import Location, RunFiles

#: Download formats and their media types.
MEDIA_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "json": "application/json",
    "jsonl": "application/x-ndjson",
    "parquet": "application/gzip",
}
#: File name extension of each download format.
EXTENSIONS = {"csv": "csv", "json": "json", "jsonl": "jsonl", "parquet": "tar.gz"}


def run_dir(data_dir: Path, run_id: str) -> Path:
    """Where run `run_id` keeps its checkpoint and output in the data dir (see `run_location`)."""
    return data_dir / "runs" / run_id


def _parts(root: Location) -> list[tuple[RunFiles, str]]:
    files = RunFiles(root)
    return [(files, p) for p in files.list("parts", ".parquet") if _metadata(files, p).num_rows]


def _metadata(files: RunFiles, path: str) -> pq.FileMetaData:
    with files.open(path) as handle:
        return pq.read_metadata(handle)


def _schema(files: RunFiles, path: str) -> pa.Schema:
    with files.open(path) as handle:
        return pq.read_schema(handle)


def _table(files: RunFiles, path: str) -> pa.Table:
    with files.open(path) as handle, pq.ParquetFile(handle) as part:
        return part.read(use_threads=False)


def output_schema(root: Location) -> pa.Schema | None:
    """The public schema of the output (internal ``_`` columns left out), or None before any row exists."""
    parts = _parts(root)
    if not parts:
        return None
    schema = pa.unify_schemas([_schema(f, p) for f, p in parts], promote_options="permissive")
    return pa.schema([f for f in schema if not f.name.startswith("_")])


def output_tables(root: Location) -> Iterator[pa.Table]:
    """The output rows in input order, one table per finished batch, all with `output_schema`."""
    schema = output_schema(root)
    if schema is None:
        return
    for files, path in _parts(root):
        yield conform(_table(files, path), schema)


def output_rows(root: Location) -> int:
    """How many output rows the finished batches hold (0 before the first)."""
    files = RunFiles(root)
    return sum(_metadata(files, p).num_rows for p in files.list("parts", ".parquet"))


def export(root: Location, fmt: str, dest: Path) -> None:
    """Write the output to `dest` as `fmt` (csv, json, jsonl, or parquet: a tar.gz of shards).

    In csv, cells a spreadsheet would run as formulas are neutralized (`datamill.dataio.open_writer`).

    Raises:
        ValueError: an unknown format.
    """
    if fmt == "parquet":
        _export_shards(root, dest)
        return
    if fmt not in MEDIA_TYPES:
        raise ValueError(f"unknown download format {fmt!r}")
    # Downloads are opened in spreadsheets: a cell like =HYPERLINK(...) is written as text, not run.
    with open_writer(dest, format=fmt, neutralize_formulas=True) as writer:
        for table in output_tables(root):
            writer.write_batch(table)


def export_rejections(root: Location, dest: Path) -> int:
    """Write the rows the run removed so far to `dest` as JSON lines, in input order; returns how many."""
    files = RunFiles(root)
    count = 0
    tmp = dest.with_name(f".{dest.name}.partial")
    with open(tmp, "wb") as out:
        for path in files.list("rejected", ".jsonl"):
            with files.open(path) as handle:
                for line in handle:
                    if line.strip():
                        out.write(line if line.endswith(b"\n") else line + b"\n")
                        count += 1
    tmp.replace(dest)
    return count


def _export_shards(root: Location, dest: Path) -> None:
    tmp = dest.with_name(f".{dest.name}.partial")
    with tarfile.open(tmp, "w:gz") as archive:
        for number, table in enumerate(output_tables(root)):
            buffer = io.BytesIO()
            pq.write_table(table, buffer)
            info = tarfile.TarInfo(f"part-{number:05d}.parquet")
            info.size = buffer.tell()
            buffer.seek(0)
            archive.addfile(info, buffer)
    tmp.replace(dest)


def write_parquet(root: Location, dest: Path) -> tuple[list[str], int]:
    """The whole output as one Parquet file at `dest`; returns its columns and row count."""
    schema = output_schema(root) or pa.schema([])
    rows = 0
    tmp = dest.with_name(f".{dest.name}.partial")
    with pq.ParquetWriter(tmp, schema) as writer:
        for table in output_tables(root):
            writer.write_table(table)
            rows += table.num_rows
    tmp.replace(dest)
    return schema.names, rows
