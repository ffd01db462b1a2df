"""Reading .xlsx workbooks with openpyxl in read-only mode, one sheet, row by row.

The first row is the header; a blank header cell is named ``column_<n>`` and a repeated name gets a ``_<k>``
suffix, as in every reader (see `_names`), so no column is lost to a collision. Fully empty rows are skipped.
Like csv, every cell is read as a string, so a column mixing numbers and text (common in spreadsheets) reads
cleanly: numbers as written (3, 0.5), booleans as TRUE/FALSE (as Excel's own csv export writes them), dates
in ISO format. A value beyond the header's width becomes a new column ``column_<n>`` rather than being
dropped.
"""

from __future__ import annotations

import datetime as dt
import warnings
import zipfile
from collections.abc import Iterator
from typing import Any

import pyarrow as pa

from datamill.core.errors import DataFormatError
from datamill.dataio._names import renamed_batch, unique_names, warn_renamed
from datamill.dataio._records import RecordBatcher
from datamill.dataio._source import BatchStream, ReadOptions, SourceFactory


def cell_text(value: Any) -> str | None:
    """The string a cell value is read as (None for an empty cell)."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time() else value.isoformat(sep=" ")
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    return str(value)


def header_names(cells: tuple[Any, ...]) -> tuple[list[str], list[str], dict[str, str]]:
    """Column names from the header row (blanks named by position, trailing ones cut), made unique.

    Returns the names as written, the unique names, and ``{new name: original name}`` for the renamed ones.
    """
    texts = [cell_text(cell) for cell in cells]
    while texts and texts[-1] is None:
        texts.pop()
    written = [text if text is not None else f"column_{index}" for index, text in enumerate(texts, start=1)]
    unique, renamed = unique_names(written)
    return written, unique, renamed


#: The most a workbook's parts may inflate to, in all; and the ratio past which a large part is a bomb.
MAX_INFLATED_BYTES = 1 << 30
MAX_PART_RATIO = 200
_RATIO_CHECKED_FROM = 8 << 20


def check_parts(path: str) -> None:
    """Refuse a workbook bomb, from the ZIP directory, before anything is read.

    A bomb is a workbook whose parts inflate past `MAX_INFLATED_BYTES`, or with a large part compressed more
    than `MAX_PART_RATIO` to 1 (shared strings or a sheet of one repeated value).

    Raises:
        DataFormatError: The workbook is such a bomb (or not a ZIP at all).
    """
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, OSError) as exc:
        raise DataFormatError(path, f"not a valid xlsx workbook ({type(exc).__name__}: {exc})") from exc
    total = sum(member.file_size for member in members)
    if total > MAX_INFLATED_BYTES:
        raise DataFormatError(
            path, f"the workbook inflates to {total} bytes, more than the limit of {MAX_INFLATED_BYTES}"
        )
    for member in members:
        ratio = member.file_size / max(member.compress_size, 1)
        if member.file_size >= _RATIO_CHECKED_FROM and ratio > MAX_PART_RATIO:
            raise DataFormatError(
                path,
                f"the workbook part {member.filename!r} is compressed {ratio:.0f} to 1 "
                f"(more than {MAX_PART_RATIO} to 1): refused as a decompression bomb",
            )


def _load(path: str) -> Any:
    # Imported here: openpyxl is slow to import and most runs never read a spreadsheet.
    import openpyxl

    check_parts(path)

    try:
        with warnings.catch_warnings():
            # Style and extension warnings say nothing about the data, yet fail warnings-as-errors callers.
            warnings.simplefilter("ignore")
            return openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many unrelated types for a file that is not a workbook
        raise DataFormatError(path, f"not a valid xlsx workbook ({type(exc).__name__}: {exc})") from exc


def _rows(path: str, sheet: Any) -> Iterator[tuple[Any, ...]]:
    # The sheet's declared size (<dimension ref="A1:XFD1048576"/>) is not trusted: openpyxl would pad every
    # row to it, so a 27 KB file of 3,000 short rows took 15 s of CPU. Without it, a row holds the cells the
    # file has.
    sheet.reset_dimensions()
    rows = sheet.iter_rows(values_only=True)
    while True:
        try:
            row = next(rows)
        except StopIteration:
            return
        except Exception as exc:  # a damaged sheet part fails in XML parsing or openpyxl's own checks
            raise DataFormatError(
                path, f"cannot read the sheet {sheet.title!r} ({type(exc).__name__}: {exc})"
            ) from exc
        yield row


def _record(names: list[str], row: tuple[Any, ...]) -> dict[str, str | None]:
    record = {name: cell_text(cell) for name, cell in zip(names, row, strict=False)}
    for index in range(len(names), len(row)):
        text = cell_text(row[index])
        if text is not None:
            record[f"column_{index + 1}"] = text
    return record


def _stream(path: str, options: ReadOptions) -> BatchStream:
    book = _load(path)
    try:
        sheet = _sheet(path, book, options.sheet)
        rows = enumerate(_rows(path, sheet), start=1)
        header = next(rows, None)
        if header is None:
            raise DataFormatError(path, f"file is empty: the sheet {sheet.title!r} has no cells")
        written, names, renamed = header_names(header[1])
        warn_renamed(path, written, renamed)
        batcher = RecordBatcher(path, "row", value_type=pa.string(), columns=names)
        records: list[dict[str, str | None]] = []
        positions: list[int] = []
        seen = 0
        for number, row in rows:
            if all(cell is None or cell == "" for cell in row):
                continue
            records.append(_record(names, row))
            positions.append(number)
            if len(records) == options.batch_size:
                seen += len(records)
                yield _marked(batcher.to_batch(list(records), positions), renamed)
                records, positions = [], []
        if records:
            seen += len(records)
            yield _marked(batcher.to_batch(list(records), positions), renamed)
        if seen == 0:
            raise DataFormatError(path, f"file is empty: the sheet {sheet.title!r} has a header but no rows")
    finally:
        book.close()


def _marked(batch: pa.RecordBatch, renamed: dict[str, str]) -> pa.RecordBatch:
    return renamed_batch(batch, batch.schema.names, renamed) if renamed else batch


def _sheet(path: str, book: Any, name: str | None) -> Any:
    if name is None:
        return book.worksheets[0]
    if name not in book.sheetnames:
        sheets = ", ".join(repr(s) for s in book.sheetnames)
        raise DataFormatError(path, f"the workbook has no sheet named {name!r}; its sheets are {sheets}")
    return book[name]


def xlsx_source(path: str, options: ReadOptions) -> SourceFactory:
    """Check that `path` opens as a workbook (and has the sheet asked for) and return its batch source."""
    book = _load(path)
    try:
        _sheet(path, book, options.sheet)
    finally:
        book.close()
    return lambda: _stream(path, options)
