"""Profiling an uploaded file: its columns, its row count and which columns hold images.

Image columns are told from a sample of the first batch, keeping it simple: a column is an image column when
most sampled values look like images. The export encoding (Adaption API) follows
from what they look like: bytes or ``data:image/...`` URIs are ``embedded_bytes``, ``http(s)`` URLs of image
files are ``url``, other paths or object keys of image files are ``file_reference``.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pyarrow as pa

from datamill.dataio import open_dataset

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".gif", ".webp", ".bmp", ".tif", ".tiff", ".svg", ".heic")
_MAGIC = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF87a", b"GIF89a", b"BM")
SAMPLE_SIZE = 50
#: Share of the sampled non-empty values that must look like images.
IMAGE_SHARE = 0.8


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


def profile_file(path: Path, file_format: str) -> FileProfile:
    """Read a file once: its columns (of the widest schema), row count and image columns.

    Raises:
        DataFormatError: The file cannot be read as `file_format`.
    """
    with open_dataset(path, format=file_format) as reader:
        rows, images = 0, None
        for batch in reader:
            if images is None:
                images = detect_image_columns(batch)
            rows += batch.num_rows
        return FileProfile(columns=reader.columns, row_count=rows, image_columns=images or {})
