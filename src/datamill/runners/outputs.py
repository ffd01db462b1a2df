"""A run's output for the server: the checkpoint at the run's location, read and converted for downloads.

A run keeps its output where the pipeline checkpointed it (`datamill.pipelines.checkpoint`), beside
``request.json`` (the run's request) and, once evaluated, ``evaluation.json``. A part is complete or absent,
so reading while the run is still going (or after it failed) gives exactly the rows of its finished batches,
in input order. Nothing here writes to the run's location: readers never disturb a run in progress. The
location is ``<data_dir>/runs/<run_id>/`` or a prefix on object storage (`datamill.runners.run_files`).

`export` converts the output for a download with the writers every entry point shares
(`datamill.pipelines.export`): csv, json and jsonl as one file, ``parquet`` as a gzipped tar of shards.
`export_rejections` gives the rows the run removed, as JSON lines in input order (``row_number``, ``step``,
``reason``, ``row``): the writer of the command line's ``<output>.rejected.jsonl``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa

from datamill.dataio.folder import Location
from datamill.pipelines.checkpoint import CheckpointFiles
from datamill.pipelines.export import write_output, write_rejections, write_shards

#: Download formats and their media types.
MEDIA_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "json": "application/json",
    "jsonl": "application/x-ndjson",
    "parquet": "application/gzip",
}
#: File name extension of each download format.
EXTENSIONS = {"csv": "csv", "json": "json", "jsonl": "jsonl", "parquet": "tar.gz"}


def output_schema(root: Location) -> pa.Schema | None:
    """The public schema of the output (internal ``_`` columns left out), or None before any row exists."""
    return CheckpointFiles(root).output_schema()


def output_tables(root: Location) -> Iterator[pa.Table]:
    """The output rows in input order, one table per finished batch, all with `output_schema`."""
    return CheckpointFiles(root).iter_output()


def output_rows(root: Location) -> int:
    """How many output rows the finished batches hold (0 before the first)."""
    return CheckpointFiles(root).output_rows()


def export(root: Location, fmt: str, dest: Path) -> None:
    """Write the output to `dest` as `fmt` (csv, json, jsonl, or parquet: a tar.gz of shards).

    In csv, cells a spreadsheet would run as formulas are neutralized (`datamill.dataio.open_writer`).

    Raises:
        ValueError: an unknown format.
    """
    if fmt not in MEDIA_TYPES:
        raise ValueError(f"unknown download format {fmt!r}")
    if fmt == "parquet":
        write_shards(CheckpointFiles(root), dest)
    else:
        # Downloads are opened in spreadsheets: a cell like =HYPERLINK(...) is written as text, not run.
        write_output(CheckpointFiles(root), dest, fmt, neutralize_formulas=True)


def export_rejections(root: Location, dest: Path) -> int:
    """Write the rows the run removed so far to `dest` as JSON lines, in input order; returns how many."""
    return write_rejections(CheckpointFiles(root), dest)
