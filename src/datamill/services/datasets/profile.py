"""Profiling an uploaded file: its columns, its row count and which columns hold images, within a budget.

A `ReadBudget` bounds what one file may cost an ingest worker. Its column cap is checked before the file is
parsed where the format allows (a csv or tsv header line, a Parquet footer), so a small file declaring
100,000 columns is refused before the reader allocates a builder for each; other formats are checked once
the reader knows the columns. Its time budget is checked after each batch. A file over either fails its
dataset with a reason naming the limit and the setting that raises it. Rows and cells stay bounded by the
readers themselves (a row larger than the read block is refused, workbooks are checked for bombs).

Image columns are told from a sample of the first batch, keeping it simple: a column is an image column when
most sampled values look like images. The export encoding (Adaption API) follows
from what they look like: bytes or ``data:image/...`` URIs are ``embedded_bytes``, ``http(s)`` URLs of image
files are ``url``, other paths or object keys of image files are ``file_reference``.
"""

from __future__ import annotations

import csv
import io
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pyarrow as pa

from datamill.core.errors import DataFormatError
from datamill.dataio import open_dataset
from datamill.services.datasets.profile_isolated import ISOLATED_FORMATS, profile_in_child

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".gif", ".webp", ".bmp", ".tif", ".tiff", ".svg", ".heic")
_MAGIC = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF87a", b"GIF89a", b"BM")
SAMPLE_SIZE = 50
#: Share of the sampled non-empty values that must look like images.
IMAGE_SHARE = 0.8


#: Bytes of a csv or tsv file looked at for its header line before it is parsed.
HEADER_PEEK_BYTES = 1 << 20


@dataclass(frozen=True)
class ReadBudget:
    """What reading one file may cost: its columns, seconds of reading, and memory.

    The memory budget holds for the formats read in a child process (`profile_isolated`); the streaming
    formats need no more than a batch.
    """

    max_columns: int = 2000
    timeout_s: float = 300.0
    max_memory_bytes: int = 1 << 30

    def check_columns(self, path: Path, count: int) -> None:
        if count > self.max_columns:
            raise DataFormatError(
                str(path),
                f"the file has {count:,} columns; at most {self.max_columns:,} are read "
                "(the operator sets the cap with DATAMILL_INGEST_MAX_COLUMNS)",
            )


@dataclass
class FileProfile:
    """What ingest learns about a file."""

    columns: list[str]
    row_count: int
    image_columns: dict[str, str] = field(default_factory=dict)


def _classify(value: object) -> str | None:
    """The image encoding a single value suggests, or None if it does not look like an image."""
    if isinstance(value, bytes):
        is_webp = value[:4] == b"RIFF" and value[8:12] == b"WEBP"
        return "embedded_bytes" if value.startswith(_MAGIC) or is_webp else None
    if isinstance(value, dict):  # Hugging Face's Image feature: {"bytes": ..., "path": ...}
        if value.get("bytes") is not None:
            return _classify(value["bytes"])
        return _classify(value.get("path"))
    if not isinstance(value, str):
        return None
    text = value.strip()
    if text.lower().startswith("data:image/"):
        return "embedded_bytes"
    parts = urlsplit(text)
    if not parts.path.lower().endswith(IMAGE_EXTENSIONS) or any(c.isspace() for c in text):
        return None
    return "url" if parts.scheme in ("http", "https") else "file_reference"


def detect_image_columns(batch: pa.RecordBatch) -> dict[str, str]:
    """Column → image encoding, for the columns of `batch` whose sampled values mostly look like images."""
    found: dict[str, str] = {}
    for name, column in zip(batch.schema.names, batch.columns, strict=True):
        values = [v for v in column.to_pylist()[: SAMPLE_SIZE * 4] if v not in (None, "")][:SAMPLE_SIZE]
        kinds = Counter(_classify(v) for v in values)
        hits = sum(n for kind, n in kinds.items() if kind is not None)
        if values and hits >= IMAGE_SHARE * len(values):
            found[name] = max((k for k in kinds if k is not None), key=lambda k: kinds[k])
    return found


def _declared_columns(path: Path, file_format: str) -> int | None:
    """The columns a file declares before it is parsed: a csv/tsv header line, a Parquet footer; else None."""
    if file_format == "parquet":
        import pyarrow.parquet as pq

        try:
            return int(pq.read_metadata(path).num_columns)
        except (OSError, pa.ArrowException):
            return None  # not Parquet after all: the reader says why
    if file_format not in ("csv", "tsv"):
        return None
    with path.open("rb") as handle:
        head = handle.read(HEADER_PEEK_BYTES)
    line = head.split(b"\n", 1)[0].decode("utf-8", errors="replace")
    try:  # the most fields any usual delimiter splits the header into, quoting respected
        return max(len(next(csv.reader(io.StringIO(line), delimiter=d), [])) for d in ",;\t|")
    except csv.Error:
        return None


def profile_file(path: Path, file_format: str, budget: ReadBudget | None = None) -> FileProfile:
    """Read a file once, within `budget`: its columns (of the widest schema), row count and image columns.

    Workbooks and documents are read in a child process held to the memory budget (`profile_isolated`);
    the other formats stream in this one.

    Raises:
        DataFormatError: The file cannot be read as `file_format`, or it is over the budget.
    """
    budget = budget or ReadBudget()
    if file_format in ISOLATED_FORMATS:
        found = profile_in_child(
            path,
            file_format,
            max_columns=budget.max_columns,
            timeout_s=budget.timeout_s,
            max_memory_bytes=budget.max_memory_bytes,
        )
        return FileProfile(
            columns=[str(c) for c in found["columns"]],
            row_count=int(found["row_count"]),
            image_columns={str(k): str(v) for k, v in found["image_columns"].items()},
        )
    return profile_in_process(path, file_format, budget)


def profile_in_process(path: Path, file_format: str, budget: ReadBudget) -> FileProfile:
    """`profile_file` in this process (the memory budget is not checked here)."""
    deadline = time.monotonic() + budget.timeout_s
    declared = _declared_columns(path, file_format)
    if declared is not None:
        budget.check_columns(path, declared)
    with open_dataset(path, format=file_format) as reader:
        budget.check_columns(path, len(reader.columns))
        rows, images = 0, None
        for batch in reader:
            budget.check_columns(path, batch.num_columns)
            if images is None:
                images = detect_image_columns(batch)
            rows += batch.num_rows
            if time.monotonic() > deadline:
                raise DataFormatError(
                    str(path),
                    f"reading the file took longer than {budget.timeout_s:g} s ({rows:,} rows read); "
                    "the operator sets the budget with DATAMILL_INGEST_TIMEOUT_S",
                )
        return FileProfile(columns=reader.columns, row_count=rows, image_columns=images or {})
