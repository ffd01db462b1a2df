"""Reading csv and tsv files with pyarrow's streaming CSV reader.

Every column is read as a string (no type guessing): pyarrow infers types from the first block only, so a
column of numbers whose millionth row says "n/a" would fail half-way through a stream, and training data is
text anyway. Unquoted empty cells are null; a quoted empty cell ("") is an empty string, which lets csv
written by datamill round-trip. Cells may hold quoted newlines. The delimiter is sniffed on the head sample
among , ; tab and | (a plain comma when the sniffer cannot tell); tsv uses a tab unless told otherwise.

Files are read in 1 MB blocks. Counting rows parses them the same way (the same checks as a read) but in
128 KB blocks on the calling thread, then hands the freed buffers back to the operating system: on a 70 MB
file that takes a few MB instead of the 40–60 MB that pyarrow's read-ahead of 1 MB blocks holds.

A header that repeats a name keeps every column: the repeats get a ``_2``, ``_3`` suffix (see `_names`).
"""

from __future__ import annotations

import csv
import functools
from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv

from datamill.core.errors import DataFormatError
from datamill.dataio._names import renamed_batch, unique_names, warn_renamed
from datamill.dataio._source import BatchStream, ReadOptions, SourceFactory
from datamill.dataio._text import (
    TextSample,
    check_not_blank,
    find_invalid_utf8,
    invalid_utf8,
    is_utf8,
    read_sample,
)

_SNIFF_CHARS = 16 * 1024
_DELIMITERS = ",;\t|"
_BLOCK_BYTES = 1 << 20
_COUNT_BLOCK_BYTES = 128 << 10


def sniff_delimiter(text: str) -> str:
    """Guess the delimiter of csv text among , ; tab and |, falling back to a comma."""
    return _sniff(text[:_SNIFF_CHARS])


@functools.lru_cache(maxsize=32)
def _sniff(head: str) -> str:
    # The sniffer's regular expressions take tens of milliseconds on a full sample, and a run opens its
    # input several times (check, count, sample, read): each head is sniffed once.
    try:
        return csv.Sniffer().sniff(head, delimiters=_DELIMITERS).delimiter
    except csv.Error:
        return ","


class _CsvFile:
    """One csv file with its sniffed settings; calling it (or `stream()`) starts a pass over it."""

    def __init__(self, path: str, sample: TextSample, delimiter: str) -> None:
        self.path = path
        self.sample = sample
        self.delimiter = delimiter
        self._bad_rows: list[Any] = []

    def _on_invalid_row(self, row: Any) -> str:
        # Remember the row so the error can name its column counts; pyarrow then raises ArrowInvalid.
        self._bad_rows.append(row)
        return "error"

    def __call__(self) -> BatchStream:
        return self.stream()

    def count_rows(self) -> int:
        """The rows of the file (parsed and checked as a read would), in small blocks."""
        try:
            try:
                return sum(b.num_rows for b in self.stream(block_bytes=_COUNT_BLOCK_BYTES, threads=False))
            except DataFormatError as exc:
                if "straddl" not in str(exc.__cause__):
                    raise
                # A row longer than a small block: count in the blocks a read uses, which may still hold it.
                return sum(b.num_rows for b in self.stream(threads=False))
        finally:
            pa.default_memory_pool().release_unused()

    def _open(self, names: list[str] | None, block_bytes: int, threads: bool) -> pacsv.CSVStreamingReader:
        encoding = "utf8" if is_utf8(self.sample.encoding) else self.sample.encoding
        convert = pacsv.ConvertOptions(
            column_types=dict.fromkeys(names, pa.string()) if names is not None else None,
            strings_can_be_null=True,
            null_values=[""],
            quoted_strings_can_be_null=False,
        )
        try:
            return pacsv.open_csv(
                self.path,
                read_options=pacsv.ReadOptions(
                    encoding=encoding, block_size=block_bytes, use_threads=threads
                ),
                parse_options=pacsv.ParseOptions(
                    delimiter=self.delimiter,
                    newlines_in_values=True,
                    invalid_row_handler=self._on_invalid_row,
                ),
                convert_options=convert,
            )
        except pa.ArrowException as exc:
            raise self._error(exc) from exc

    def stream(self, *, block_bytes: int = _BLOCK_BYTES, threads: bool = True) -> BatchStream:
        self._bad_rows.clear()
        # A first open learns the header; the second reads every column as a string.
        header = self._open(None, block_bytes, threads)
        names = header.schema.names
        header.close()
        unique, renamed = unique_names(names)
        warn_renamed(self.path, names, renamed)
        reader = self._open(names, block_bytes, threads)
        rows = 0
        try:
            for batch in self._batches(reader):
                rows += batch.num_rows
                yield renamed_batch(batch, unique, renamed) if renamed else batch
        finally:
            reader.close()
        if rows == 0:
            raise DataFormatError(
                self.path, f"file is empty: it has a header ({', '.join(names)}) but no rows"
            )

    def _batches(self, reader: pacsv.CSVStreamingReader) -> Iterator[pa.RecordBatch]:
        while True:
            try:
                batch = reader.read_next_batch()
            except StopIteration:
                return
            except pa.ArrowException as exc:
                raise self._error(exc) from exc
            if batch.num_rows:
                yield batch

    def _error(self, exc: pa.ArrowException) -> DataFormatError:
        message = str(exc)
        if self._bad_rows:
            row = self._bad_rows[-1]
            line = _ragged_line(self.path, self.sample.encoding, self.delimiter, row.expected_columns)
            return DataFormatError(
                self.path, f"expected {row.expected_columns} columns, found {row.actual_columns}", line=line
            )
        if "UTF8" in message and is_utf8(self.sample.encoding):
            found = find_invalid_utf8(self.path)
            if found is not None:
                return invalid_utf8(self.path, *found)
        if "straddl" in message:  # pyarrow's words for a row that does not fit in one block
            return DataFormatError(
                self.path,
                f"a row is longer than {_BLOCK_BYTES >> 20} MiB (a huge cell, or a quote never closed): "
                "close the quote, or save data with very long cells as JSONL or Parquet",
            )
        return DataFormatError(self.path, f"cannot parse the file: {message}")


def _ragged_line(path: str, encoding: str, delimiter: str, expected: int) -> int | None:
    """Line number where the first record with other than `expected` fields starts (pyarrow does not say)."""
    with open(path, encoding=encoding, newline="", errors="replace") as f:
        reader = csv.reader(f, delimiter=delimiter)
        start = 1
        for record in reader:
            if record and len(record) != expected:
                return start
            start = reader.line_num + 1
    return None


def csv_source(path: str, options: ReadOptions, *, default_delimiter: str | None = None) -> SourceFactory:
    """Sniff a csv file (or a tsv one, given a tab as `default_delimiter`) and return its batch source."""
    sample = read_sample(path, options.encoding)
    check_not_blank(path, sample)
    delimiter = options.delimiter or default_delimiter or sniff_delimiter(sample.text)
    if len(delimiter) != 1:
        raise DataFormatError(path, f"the delimiter must be one character, got {delimiter!r}")
    return _CsvFile(path, sample, delimiter)


def tsv_source(path: str, options: ReadOptions) -> SourceFactory:
    """A tsv file is a csv file whose delimiter defaults to a tab."""
    return csv_source(path, options, default_delimiter="\t")
