"""The texts of a seed file that may hold personal data, and the file written back with them replaced.

`split_file(path, data)` reads a file into `Field` texts and a `FileTemplate` that writes the file again
from replacement texts, in the same format:

==========  ======================================================================================
format      what is read (a *sample* is what ``samples_processed`` counts)
==========  ======================================================================================
txt, md     the whole file, one sample
csv         every cell but the header row's; a sample per data row
jsonl       every string and number of each line's value, at any depth; a sample per line
json        every string and number, at any depth; a sample per item of a top-level array, else one
xlsx        every text and number cell of every sheet but each sheet's first row (formulas are kept as
            they are); a sample per data row
pdf         the text of every page, written as a text file ``<name>.pdf.txt`` (a PDF is not rewritten)
==========  ======================================================================================

Object keys, csv headers and xlsx header rows are column names, not data, and are kept. A number in
which personal data is found becomes a string. Text is read as UTF-8 (a byte order mark is kept out),
else as Latin-1.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from datamill.core.errors import DataFormatError


@dataclass(frozen=True)
class Field:
    """One text of a file: its sample number (from 0), where it is (a column or JSON path), the text."""

    sample: int
    where: str
    text: str


@dataclass(frozen=True)
class FileTemplate:
    """A file split into texts; `write` puts replacement texts (in `fields` order) back into it."""

    path: str
    content_type: str
    fields: list[Field]
    samples: int
    write: Callable[[Sequence[str]], bytes]


def _decode(path: str, data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def split_file(path: str, data: bytes) -> FileTemplate:
    """The file's texts and how to write it back (see the module docstring).

    Raises:
        DataFormatError: the file cannot be read as its extension says.
    """
    suffix = PurePosixPath(path).suffix.lower()
    if suffix in (".txt", ".md", ""):
        return _text(path, data)
    if suffix == ".csv":
        return _csv(path, data)
    if suffix == ".jsonl":
        return _jsonl(path, data)
    if suffix == ".json":
        return _json(path, data)
    if suffix == ".xlsx":
        return _xlsx(path, data)
    if suffix == ".pdf":
        return _pdf(path, data)
    raise DataFormatError(path, f"files of type {suffix} cannot be anonymized")


def _text(path: str, data: bytes) -> FileTemplate:
    text = _decode(path, data)
    content_type = "text/markdown" if path.lower().endswith(".md") else "text/plain"
    return FileTemplate(path, content_type, [Field(0, "", text)], 1, lambda out: out[0].encode("utf-8"))


def _csv(path: str, data: bytes) -> FileTemplate:
    text = _decode(path, data)
    try:
        rows = list(csv.reader(io.StringIO(text, newline="")))
    except csv.Error as exc:
        raise DataFormatError(path, f"not a valid csv file: {exc}") from exc
    header = rows[0] if rows else []
    fields: list[Field] = []
    cells: list[tuple[int, int]] = []
    for r, row in enumerate(rows[1:], 1):
        for c, value in enumerate(row):
            if value.strip():
                column = header[c] if c < len(header) else f"column {c + 1}"
                fields.append(Field(r - 1, column, value))
                cells.append((r, c))
    newline = "\r\n" if "\r\n" in text else "\n"

    def write(out: Sequence[str]) -> bytes:
        copy = [list(row) for row in rows]
        for (r, c), value in zip(cells, out, strict=True):
            copy[r][c] = value
        buffer = io.StringIO(newline="")
        csv.writer(buffer, lineterminator=newline).writerows(copy)
        return buffer.getvalue().encode("utf-8")

    return FileTemplate(path, "text/csv", fields, max(0, len(rows) - 1), write)


def _walk(value: Any, where: str, found: list[tuple[str, Any]]) -> None:
    """Collect the ``(path, value)`` of every string and number in a JSON value."""
    if isinstance(value, dict):
        for key, item in value.items():
            _walk(item, f"{where}/{key}", found)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _walk(item, f"{where}/{i}", found)
    elif _is_text(value) or _is_number(value):
        found.append((where, value))


def _is_text(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _replace(value: Any, where: str, replacements: dict[str, str]) -> Any:
    """A copy of a JSON value with the leaves at the paths of `replacements` replaced."""
    if isinstance(value, dict):
        return {k: _replace(v, f"{where}/{k}", replacements) for k, v in value.items()}
    if isinstance(value, list):
        return [_replace(v, f"{where}/{i}", replacements) for i, v in enumerate(value)]
    return replacements.get(where, value)


def _leaf_fields(sample: int, value: Any, root: str) -> tuple[list[Field], list[tuple[str, Any]]]:
    leaves: list[tuple[str, Any]] = []
    _walk(value, root, leaves)
    return [Field(sample, where or "/", _leaf_text(leaf)) for where, leaf in leaves], leaves


def _leaf_text(leaf: Any) -> str:
    return leaf if isinstance(leaf, str) else json.dumps(leaf)


def _changed(leaves: Sequence[tuple[str, Any]], out: Sequence[str]) -> dict[str, str]:
    """The leaves whose text changed: their new text (a number that changed becomes a string)."""
    return {where: new for (where, leaf), new in zip(leaves, out, strict=True) if new != _leaf_text(leaf)}


def _jsonl(path: str, data: bytes) -> FileTemplate:
    lines = _decode(path, data).splitlines()
    values: list[tuple[int, Any]] = []
    for number, line in enumerate(lines, 1):
        if line.strip():
            try:
                values.append((number - 1, json.loads(line)))
            except ValueError as exc:
                raise DataFormatError(path, f"line {number} is not valid JSON: {exc}", line=number) from exc
    fields: list[Field] = []
    leaves: list[tuple[str, Any]] = []
    counts: list[int] = []
    for sample, (_, value) in enumerate(values):
        found, at = _leaf_fields(sample, value, "")
        fields += found
        leaves += at
        counts.append(len(at))

    def write(out: Sequence[str]) -> bytes:
        copy = list(lines)
        start = 0
        for (line, value), count in zip(values, counts, strict=True):
            changed = _changed(leaves[start : start + count], out[start : start + count])
            start += count
            if changed:
                copy[line] = json.dumps(_replace(value, "", changed), ensure_ascii=False)
        return ("\n".join(copy) + "\n").encode("utf-8")

    return FileTemplate(path, "application/jsonl", fields, len(values), write)


def _json(path: str, data: bytes) -> FileTemplate:
    try:
        value = json.loads(_decode(path, data))
    except ValueError as exc:
        raise DataFormatError(path, f"not valid JSON: {exc}") from exc
    items = value if isinstance(value, list) else [value]
    fields: list[Field] = []
    leaves: list[tuple[str, Any]] = []
    for sample, item in enumerate(items):
        root = f"/{sample}" if isinstance(value, list) else ""
        found, at = _leaf_fields(sample, item, root)
        fields += found
        leaves += at

    def write(out: Sequence[str]) -> bytes:
        replaced = _replace(value, "", _changed(leaves, out))
        return (json.dumps(replaced, ensure_ascii=False, indent=2) + "\n").encode("utf-8")

    return FileTemplate(path, "application/json", fields, len(items), write)


def _xlsx(path: str, data: bytes) -> FileTemplate:
    import openpyxl

    try:
        book = openpyxl.load_workbook(io.BytesIO(data))
    except Exception as exc:  # openpyxl raises many types for a damaged workbook
        raise DataFormatError(path, f"not a valid xlsx workbook ({type(exc).__name__}: {exc})") from exc
    fields: list[Field] = []
    cells: list[Any] = []
    samples = 0
    for sheet in book.worksheets:
        header = [c.value for c in next(sheet.iter_rows(max_row=1), ())]
        for row in sheet.iter_rows(min_row=2):
            samples += 1
            for cell in row:
                value = cell.value
                if cell.data_type == "f" or value is None or isinstance(value, bool):
                    continue
                if isinstance(value, str | int | float) and str(value).strip():
                    column = cell.column - 1
                    name = header[column] if column < len(header) and header[column] else cell.column_letter
                    fields.append(Field(samples - 1, f"{sheet.title}/{name}", str(value)))
                    cells.append(cell)

    def write(out: Sequence[str]) -> bytes:
        for cell, field, new in zip(cells, fields, out, strict=True):
            if new != field.text:
                cell.value = new
        buffer = io.BytesIO()
        book.save(buffer)
        return buffer.getvalue()

    content_type = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    return FileTemplate(path, content_type, fields, samples, write)


def _pdf(path: str, data: bytes) -> FileTemplate:
    try:
        from pypdf import PdfReader
        from pypdf.errors import PyPdfError
    except ImportError as exc:
        raise DataFormatError(path, "reading a PDF needs pypdf: pip install 'datamill[anonymize]'") from exc
    try:
        pages = [page.extract_text() or "" for page in PdfReader(io.BytesIO(data)).pages]
    except (PyPdfError, ValueError, KeyError, OSError) as exc:
        raise DataFormatError(path, f"not a readable PDF ({type(exc).__name__}: {exc})") from exc
    fields = [Field(0, f"page {n}", text) for n, text in enumerate(pages, 1)]
    return FileTemplate(f"{path}.txt", "text/plain", fields, 1, lambda out: "\n\n".join(out).encode("utf-8"))
