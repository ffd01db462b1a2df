"""The file formats of the Adaption API's uploads, all of which datamill reads.

The wire names eleven formats; datamill also takes tsv (a tab-separated csv, which `datamill.dataio` reads),
so a ``.tsv`` file uploads like any table. Tabular ones (csv, tsv, json, jsonl, parquet), txt and xlsx (as a
table) become rows as they are; documents (pdf, docx, pptx, html, and zip archives of them) become rows of
text by page or by document (`datamill.dataio`'s document readers). A batch must be all tabular or all
documents; txt goes with either (Adaption API).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import PurePosixPath

from datamill.core.errors import ValidationError

FILE_FORMATS = ("csv", "tsv", "json", "jsonl", "parquet", "pdf", "docx", "pptx", "xlsx", "html", "zip", "txt")
TABULAR_FORMATS = ("csv", "tsv", "json", "jsonl", "parquet")
DOCUMENT_FORMATS = ("pdf", "docx", "pptx", "xlsx", "html", "zip")
READABLE_FORMATS = FILE_FORMATS


def known_format(file_format: str, field: str) -> str:
    """One of the wire formats (and tsv) (lower-cased); a ValidationError on `field` otherwise."""
    fmt = file_format.strip().lower().lstrip(".")
    if fmt not in FILE_FORMATS:
        raise ValidationError.of(
            field, f"unknown file format {file_format!r}; one of {', '.join(FILE_FORMATS)}"
        )
    return fmt


def check_readable(fmt: str, field: str) -> str:
    """`fmt` itself if datamill can read it; a ValidationError on `field` otherwise."""
    if fmt not in READABLE_FORMATS:
        raise ValidationError.of(
            field, f"{fmt} documents are not supported yet; upload one of {', '.join(READABLE_FORMATS)}"
        )
    return fmt


def check_format(file_format: str, field: str) -> str:
    """A wire format that datamill can read, lower-cased."""
    return check_readable(known_format(file_format, field), field)


def resolve_format(name: str, file_format: str | None, field: str) -> str:
    """The format given explicitly, else the one the name's extension names (``sales.csv``)."""
    if file_format:
        return check_format(file_format, field)
    suffix = PurePosixPath(name).suffix.lower().lstrip(".")
    if suffix in FILE_FORMATS:
        return check_format(suffix, field)
    raise ValidationError.of(
        field, f"give file_format, or a name ending in one of .{', .'.join(FILE_FORMATS)}"
    )


def check_homogeneous(formats: Sequence[str], field: str) -> None:
    """Reject a batch that mixes tabular files and documents (txt goes with either)."""
    tabular = [f for f in formats if f in TABULAR_FORMATS]
    documents = [f for f in formats if f in DOCUMENT_FORMATS]
    if tabular and documents:
        raise ValidationError.of(
            field,
            "a batch must be all tabular files (csv, tsv, json, jsonl, parquet) or all documents "
            f"(pdf, docx, pptx, xlsx, html, zip); this one mixes {sorted(set(tabular))} "
            f"with {sorted(set(documents))}",
        )
