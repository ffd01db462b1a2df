"""`DatasetReader`: one data file of any supported format, streamed as Arrow record batches.

Opening a reader sniffs the file (format, encoding, delimiter, JSON layout) and reads the first batch, so that
an unreadable or empty file fails at once with a DataFormatError and `schema` is known before iteration
starts. Iterating streams the rest with bounded memory: batches hold at most `batch_size` rows. Iterating
again starts a fresh pass over the file.

Schema: csv, tsv, xlsx and txt columns are all strings, and parquet keeps its stored types, so their schema
never changes. json and jsonl records may bring a key first seen late, or a wider type (see `_records`); then
the batches from that point on carry the wider schema and `schema` is updated to it: it is always the schema
of the latest batch, which includes every column of the batches before it.
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any

import ijson
import pyarrow as pa

from datamill.core.errors import DataFormatError, ValidationError
from datamill.dataio._csv import csv_source, tsv_source
from datamill.dataio._documents import DOCUMENT_FORMATS, document_source
from datamill.dataio._formats import detect_format
from datamill.dataio._json import json_source
from datamill.dataio._jsonl import jsonl_source, txt_source
from datamill.dataio._names import describe, renamed_columns
from datamill.dataio._parquet import count_parquet_rows, parquet_source
from datamill.dataio._source import BatchStream, ReadOptions, SourceFactory
from datamill.dataio._xlsx import xlsx_source

_SOURCES = {
    "csv": csv_source,
    "tsv": tsv_source,
    "json": json_source,
    "jsonl": jsonl_source,
    "parquet": parquet_source,
    "txt": txt_source,
    "xlsx": xlsx_source,
    **{fmt: document_source(fmt) for fmt in DOCUMENT_FORMATS},
}

_COUNT_OPTIONS = frozenset({"format", "batch_size", "encoding", "delimiter", "sheet"})
# Library errors that mean "this file is not what its format says"; anything else is a bug and propagates.
_LIBRARY_ERRORS = (pa.ArrowException, ijson.JSONError, UnicodeError, ValueError, zipfile.BadZipFile)


def _wrap(path: str, fmt: str, exc: Exception) -> DataFormatError:
    return DataFormatError(path, f"cannot read the file as {fmt}: {type(exc).__name__}: {exc}")


def _guarded(path: str, fmt: str, stream: BatchStream) -> BatchStream:
    """Pass batches through, turning a library error that a format reader let by into a DataFormatError."""
    try:
        yield from stream
    except DataFormatError:
        raise
    except _LIBRARY_ERRORS as exc:
        raise _wrap(path, fmt, exc) from exc


class DatasetReader:
    """A data file opened for streaming; a context manager and an iterable of record batches.

    Attributes:
        path: The file.
        format: Its format ('csv', 'tsv', 'json', 'jsonl', 'parquet', 'xlsx' or 'txt').
        renamed_columns: ``{new name: name in the file}`` for the columns whose name repeats an earlier one
            in the header and were read under a ``_2``, ``_3`` suffix (see `rename_note`); {} when none.
    """

    def __init__(self, path: str, fmt: str, factory: SourceFactory, batch_size: int) -> None:
        self.path = path
        self.format = fmt
        self._factory = factory
        self._batch_size = batch_size
        self._closed = False
        self._pending: BatchStream | None = _guarded(path, fmt, factory())
        try:
            self._first: pa.RecordBatch | None = next(self._pending, None)
        except BaseException:
            self._pending.close()
            raise
        if self._first is None:  # sources raise their own, better worded, "empty" errors; this is a backstop
            raise DataFormatError(path, "file is empty: it has no rows")
        self._schema: pa.Schema = self._first.schema
        self.renamed_columns = renamed_columns(self._schema)

    @property
    def rename_note(self) -> str | None:
        """A sentence saying which repeated columns were renamed, or None when none were."""
        return f"{self.path}: {describe(self.renamed_columns)}" if self.renamed_columns else None

    @property
    def schema(self) -> pa.Schema:
        """The schema of the latest batch (the first until iteration moves on); see the module docstring."""
        return self._schema

    @property
    def columns(self) -> list[str]:
        """The column names of `schema`."""
        return list(self._schema.names)

    def __iter__(self) -> Iterator[pa.RecordBatch]:
        if self._closed:
            raise ValueError(f"the reader of {self.path} is closed")
        return self._iterate()

    def _iterate(self) -> Iterator[pa.RecordBatch]:
        stream, first = self._pending, self._first
        self._pending, self._first = None, None
        if stream is None:
            stream = _guarded(self.path, self.format, self._factory())
        try:
            if first is not None:
                yield from self._slices(first)
            for batch in stream:
                yield from self._slices(batch)
        finally:
            stream.close()

    def _slices(self, batch: pa.RecordBatch) -> Iterator[pa.RecordBatch]:
        self._schema = batch.schema
        if batch.num_rows <= self._batch_size:
            yield batch
            return
        for start in range(0, batch.num_rows, self._batch_size):
            yield batch.slice(start, self._batch_size)

    def close(self) -> None:
        """Release the file; iterating afterwards raises ValueError. Closing twice is harmless."""
        self._closed = True
        if self._pending is not None:
            self._pending.close()
            self._pending, self._first = None, None

    def __enter__(self) -> DatasetReader:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"DatasetReader(path={self.path!r}, format={self.format!r}, columns={self.columns!r})"


def _check_file(path: str) -> None:
    if not os.path.exists(path):
        raise DataFormatError(path, "file not found")
    if not os.path.isfile(path):
        raise DataFormatError(path, "not a regular file")
    if os.path.getsize(path) == 0:
        raise DataFormatError(path, "file is empty (0 bytes)")


def open_dataset(
    path: str | Path,
    *,
    format: str | None = None,
    batch_size: int = 1024,
    encoding: str | None = None,
    delimiter: str | None = None,
    sheet: str | None = None,
) -> DatasetReader:
    """Open a data file for streaming as Arrow record batches.

    Args:
        path: The file.
        format: Its format; told from the extension when None (see `detect_format`).
        batch_size: The most rows a batch holds.
        encoding: Text encoding of csv/tsv/json/jsonl/txt; sniffed when None. Ignored by parquet and xlsx.
        delimiter: csv/tsv field delimiter; sniffed when None. Ignored by other formats.
        sheet: xlsx sheet name; the first sheet when None. Ignored by other formats.

    Raises:
        ValidationError: `batch_size` is below 1.
        DataFormatError: The file is missing, empty, of an unknown format or unreadable; the message says what
            and, where it can, on which line.
    """
    name = str(path)
    if batch_size < 1:
        raise ValidationError.of("batch_size", "must be at least 1")
    fmt = detect_format(name, format)
    _check_file(name)
    options = ReadOptions(batch_size=batch_size, encoding=encoding, delimiter=delimiter, sheet=sheet)
    with _library_errors(name, fmt):
        return DatasetReader(name, fmt, _SOURCES[fmt](name, options), batch_size)


@contextmanager
def _library_errors(name: str, fmt: str) -> Iterator[None]:
    try:
        yield
    except DataFormatError:
        raise
    except _LIBRARY_ERRORS as exc:
        raise _wrap(name, fmt, exc) from exc


def read_all(path: str | Path, **kw: Any) -> pa.Table:
    """Read a whole file into one table (for small files and tests); takes `open_dataset`'s options.

    Batches whose schema widened part-way (json, jsonl) are combined into the widest schema, earlier rows
    getting nulls in the columns they lack.
    """
    with open_dataset(path, **kw) as reader:
        batches = list(reader)
    if all(batch.schema == batches[-1].schema for batch in batches):
        return pa.Table.from_batches(batches)
    tables = [pa.Table.from_batches([batch]) for batch in batches]
    return pa.concat_tables(tables, promote_options="permissive")


def count_rows(path: str | Path, **kw: Any) -> int:
    """Count the rows of a file without holding it in memory; takes `open_dataset`'s options.

    Parquet files are counted from their footer; csv and tsv files are parsed in small blocks (see `_csv`);
    other formats are streamed.
    """
    name = str(path)
    fmt = detect_format(name, kw.get("format"))
    if fmt in ("csv", "tsv") and set(kw) <= _COUNT_OPTIONS and kw.get("batch_size", 1) >= 1:
        _check_file(name)
        options = ReadOptions(
            encoding=kw.get("encoding"), delimiter=kw.get("delimiter"), sheet=kw.get("sheet")
        )
        with _library_errors(name, fmt):
            source = _SOURCES[fmt](name, options)
            counter = getattr(source, "count_rows", None)
            if counter is not None:
                return int(counter())
    with open_dataset(path, **kw) as reader:
        if reader.format == "parquet":
            return count_parquet_rows(reader.path)
        return sum(batch.num_rows for batch in reader)
