"""Documents as rows: pdf, docx, pptx, html and zip archives of them (`_document_text` reads each one).

Every document format reads to the same three columns: ``source`` (the file name, or the member's path
inside a zip), ``page`` (the page of a pdf or the slide of a pptx, from 1; null for a docx, html or txt
document, which is one row) and ``text``. So a pdf becomes one row per page with text, a pptx one row per
slide, and a docx or html file one row. Pages and slides with no text are left out; a file with no text at
all (a scanned pdf needs OCR first) is refused as empty.

A zip is read member by member, in the archive's order, each by its own extension (``.pdf``, ``.docx``,
``.pptx``, ``.html``/``.htm``, ``.txt``/``.md``); folders, hidden files (``.name``, ``__MACOSX``) and other
types are skipped, and zips inside it are not opened. Limits, checked from the archive's directory before
anything is inflated: at most `MAX_MEMBERS` documents, `MAX_INFLATED_BYTES` in all, `MAX_DOCUMENT_BYTES` per
document, and no large member compressed more than `MAX_RATIO` to 1 (a decompression bomb). An encrypted
member is refused, naming it. A single document file may be at most `MAX_DOCUMENT_BYTES`; an html page at
most `MAX_HTML_BYTES` (a parsed page takes several times its size in memory).
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Callable, Iterator
from pathlib import PurePosixPath

import pyarrow as pa

from datamill.core.errors import DataFormatError
from datamill.dataio._document_text import Part, document_parts
from datamill.dataio._source import BatchStream, ReadOptions, SourceFactory

DOCUMENT_FORMATS = ("pdf", "docx", "pptx", "html", "zip")
MAX_MEMBERS = 10_000
MAX_DOCUMENT_BYTES = 256 << 20
MAX_HTML_BYTES = 32 << 20
MAX_INFLATED_BYTES = 2 << 30
MAX_RATIO = 200
_RATIO_CHECKED_FROM = 8 << 20
SCHEMA = pa.schema([("source", pa.string()), ("page", pa.int64()), ("text", pa.string())])
#: The format a zip member is read as, by its extension.
MEMBER_FORMATS = {
    ".pdf": "pdf",
    ".docx": "docx",
    ".pptx": "pptx",
    ".html": "html",
    ".htm": "html",
    ".txt": "txt",
    ".md": "txt",
}


def _documents(path: str, fmt: str) -> Iterator[tuple[str, Part]]:
    """(source, part) for every part of the file's documents."""
    name = os.path.basename(path)
    if fmt != "zip":
        limit = _limit(fmt)
        if os.path.getsize(path) > limit:
            raise DataFormatError(path, f"a {fmt} document may be at most {limit} bytes")
        with open(path, "rb") as handle:
            data = handle.read()
        for part in document_parts(path, fmt, data):
            yield name, part
        return
    with _archive(path) as archive:
        for member in _members(path, archive):
            member_fmt = MEMBER_FORMATS[PurePosixPath(member.filename).suffix.lower()]
            data = archive.read(member)
            for part in document_parts(f"{path}: {member.filename}", member_fmt, data):
                yield member.filename, part


def _archive(path: str) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise DataFormatError(path, f"not a valid zip archive ({type(exc).__name__}: {exc})") from exc


def _members(path: str, archive: zipfile.ZipFile) -> list[zipfile.ZipInfo]:
    """The document members, checked against the limits (module docstring) before any is inflated."""
    found = [m for m in archive.infolist() if _is_document(m.filename) and not m.is_dir()]
    if not found:
        kinds = ", ".join(MEMBER_FORMATS)
        raise DataFormatError(path, f"the zip holds no document ({kinds})")
    if len(found) > MAX_MEMBERS:
        raise DataFormatError(path, f"the zip holds {len(found)} documents, more than {MAX_MEMBERS}")
    total = sum(m.file_size for m in found)
    if total > MAX_INFLATED_BYTES:
        raise DataFormatError(path, f"the zip inflates to {total} bytes, more than {MAX_INFLATED_BYTES}")
    for member in found:
        if member.flag_bits & 0x1:
            raise DataFormatError(
                path, f"{member.filename} is encrypted: zip the documents without a password"
            )
        limit = _limit(MEMBER_FORMATS[PurePosixPath(member.filename).suffix.lower()])
        if member.file_size > limit:
            raise DataFormatError(path, f"{member.filename} is larger than {limit} bytes")
        ratio = member.file_size / max(member.compress_size, 1)
        if member.file_size >= _RATIO_CHECKED_FROM and ratio > MAX_RATIO:
            raise DataFormatError(
                path,
                f"{member.filename} is compressed {ratio:.0f} to 1 (more than {MAX_RATIO} to 1): "
                "refused as a decompression bomb",
            )
    return found


def _limit(fmt: str) -> int:
    return MAX_HTML_BYTES if fmt == "html" else MAX_DOCUMENT_BYTES


def _is_document(name: str) -> bool:
    parts = PurePosixPath(name).parts
    if any(p.startswith(".") or p == "__MACOSX" for p in parts):
        return False
    return PurePosixPath(name).suffix.lower() in MEMBER_FORMATS


def _stream(path: str, fmt: str, options: ReadOptions) -> BatchStream:
    rows: list[dict[str, object]] = []
    seen = 0
    for source, part in _documents(path, fmt):
        rows.append({"source": source, "page": part.page, "text": part.text})
        if len(rows) == options.batch_size:
            seen += len(rows)
            yield pa.RecordBatch.from_pylist(rows, schema=SCHEMA)
            rows = []
    if rows:
        seen += len(rows)
        yield pa.RecordBatch.from_pylist(rows, schema=SCHEMA)
    if seen == 0:
        raise DataFormatError(
            path, "file is empty: it holds no text (a scanned document needs OCR before it is uploaded)"
        )


def document_source(fmt: str) -> Callable[[str, ReadOptions], SourceFactory]:
    """The source factory builder of one document format, for `open_dataset`'s table of formats."""

    def source(path: str, options: ReadOptions) -> SourceFactory:
        return lambda: _stream(path, fmt, options)

    return source
