"""The file formats datamill reads and writes, and how a path's format is told from its name.

A format is named by a short lower-case word ('csv', 'jsonl', ...). The extension decides it unless the caller
names one explicitly, which is the escape hatch for files with unusual or missing extensions.
"""

from __future__ import annotations

from pathlib import Path

from datamill.core.errors import DataFormatError

READ_FORMATS: tuple[str, ...] = (
    "csv",
    "json",
    "jsonl",
    "parquet",
    "tsv",
    "txt",
    "xlsx",
    "pdf",
    "docx",
    "pptx",
    "html",
    "zip",
)
WRITE_FORMATS: tuple[str, ...] = ("csv", "json", "jsonl", "parquet", "tsv")

# Several common spellings per format; the first one listed is the canonical extension.
_EXTENSIONS: dict[str, str] = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".json": "json",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".xlsx": "xlsx",
    ".txt": "txt",
    ".pdf": "pdf",
    ".docx": "docx",
    ".pptx": "pptx",
    ".html": "html",
    ".htm": "html",
    ".zip": "zip",
}


def _extension_list(formats: tuple[str, ...]) -> str:
    return ", ".join(ext for ext, fmt in _EXTENSIONS.items() if fmt in formats)


def detect_format(
    path: str | Path, explicit: str | None = None, *, supported: tuple[str, ...] = READ_FORMATS
) -> str:
    """Return the format of `path`: the explicit one if given (validated), else the one its extension names.

    Args:
        path: The file; only its name is looked at.
        explicit: A format named by the caller, e.g. ``"jsonl"`` (case-insensitive, a leading dot is allowed).
        supported: The formats acceptable here (reading and writing support different sets).

    Raises:
        DataFormatError: The explicit format is unknown, or the extension names no supported format; the
            message lists the supported formats and says how to name one explicitly.
    """
    names = ", ".join(supported)
    if explicit is not None:
        fmt = explicit.strip().lower().lstrip(".")
        if fmt not in supported:
            raise DataFormatError(str(path), f"unknown format {explicit!r}; supported formats: {names}")
        return fmt
    suffix = Path(path).suffix.lower()
    fmt_or_none = _EXTENSIONS.get(suffix)
    if fmt_or_none is None or fmt_or_none not in supported:
        shown = f"extension {suffix!r}" if suffix else "no extension"
        raise DataFormatError(
            str(path),
            f"cannot tell the file format from its name ({shown}); supported formats: {names} "
            f"(extensions {_extension_list(supported)}); pass the format explicitly (format=...) to name one",
        )
    return fmt_or_none
