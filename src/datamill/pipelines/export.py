"""Writing a run's checkpointed output and rejected rows out as files: the one export of every entry point.

The command line writes the output file it was given and ``<stem>.rejected.jsonl`` beside it; the server
converts the same checkpoint for a download (``parquet`` as a gzipped tar of one Parquet shard per finished
batch, as the Adaption API serves it) and serves the rejected rows with their reasons. Every writer replaces
its target atomically: a reader sees the whole file or none.
"""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from datamill.dataio import open_writer
from datamill.pipelines.checkpoint import CheckpointFiles


def write_output(
    files: CheckpointFiles, dest: Path, fmt: str | None = None, *, neutralize_formulas: bool = False
) -> int:
    """The output rows, in input order, as one file of format `fmt` (from `dest`'s name when None).

    `neutralize_formulas` writes csv cells a spreadsheet would run as formulas as text (for downloads).
    """
    rows = 0
    with open_writer(dest, format=fmt, neutralize_formulas=neutralize_formulas) as writer:
        for table in files.iter_output():
            writer.write_batch(table)
            rows += table.num_rows
    return rows


def write_shards(files: CheckpointFiles, dest: Path) -> None:
    """The output as a gzipped tar of one Parquet file per finished batch (``part-00000.parquet``, ...)."""
    tmp = dest.with_name(f".{dest.name}.partial")
    with tarfile.open(tmp, "w:gz") as archive:
        for number, table in enumerate(files.iter_output()):
            buffer = io.BytesIO()
            pq.write_table(table, buffer)
            info = tarfile.TarInfo(f"part-{number:05d}.parquet")
            info.size = buffer.tell()
            buffer.seek(0)
            archive.addfile(info, buffer)
    tmp.replace(dest)


def write_parquet(files: CheckpointFiles, dest: Path) -> tuple[list[str], int]:
    """The whole output as one Parquet file at `dest` (no rows: no columns); returns its columns and rows."""
    schema = files.output_schema() or pa.schema([])
    rows = 0
    tmp = dest.with_name(f".{dest.name}.partial")
    with pq.ParquetWriter(tmp, schema) as writer:
        for table in files.iter_output():
            writer.write_table(table)
            rows += table.num_rows
    tmp.replace(dest)
    return schema.names, rows


def write_rejections(files: CheckpointFiles, dest: Path) -> int:
    """The rejected rows as JSON lines (``step``, ``reason`` and the row's fields); returns how many."""
    count = 0
    tmp = dest.with_name(f".{dest.name}.partial")
    with tmp.open("wb") as handle:
        for row in files.iter_rejections():
            handle.write(orjson.dumps(row, default=str) + b"\n")
            count += 1
    tmp.replace(dest)
    return count
