"""A page of a dataset's rows with its column types, read from its files (streaming, never whole)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from datamill.dataio import open_dataset
from datamill.runners.inputs import dataset_input
from datamill.server.context import ServerContext
from datamill.services.adaptation.plans import input_cache_dir

#: Characters of one cell shown in a preview (the rest is cut, marked with an ellipsis).
CELL_CHARS = 300


@dataclass(frozen=True)
class Preview:
    """Rows ``offset`` to ``offset + len(rows)`` of a dataset, and whether more follow."""

    columns: list[tuple[str, str]]
    rows: list[list[str]]
    offset: int
    has_next: bool


def cell(value: Any, limit: int = CELL_CHARS) -> str:
    """A value as short display text."""
    text = "" if value is None else str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def read_preview(context: ServerContext, dataset_id: str, offset: int, size: int) -> Preview:
    """Rows of the dataset's files (call only for a dataset the tenant owns, after reading it)."""
    cache = input_cache_dir(context.settings.data_dir)
    rows: list[list[str]] = []
    seen = 0
    has_next = False
    with (
        dataset_input(context.store, context.blobs, dataset_id, cache) as source,
        open_dataset(source.path, format=source.format) as reader,
    ):
        columns = [(f.name, str(f.type)) for f in reader.schema]
        for batch in reader:
            start = max(0, offset - seen)
            seen += batch.num_rows
            if start >= batch.num_rows:
                continue
            for record in batch.slice(start, size + 1 - len(rows)).to_pylist():
                rows.append([cell(record.get(name)) for name, _ in columns])
            if len(rows) > size:
                has_next = True
                break
    return Preview(columns, rows[:size], offset, has_next)
