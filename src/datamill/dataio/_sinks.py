"""One sink per writable format: it turns record batches into bytes on an open binary file.

A sink never opens, renames or deletes files; `DatasetWriter` does that around it. `write` is called once per
batch (with at least one batch, possibly empty, before `finish`, when the writer knows a schema), then either
`finish` once, to write any closing bytes, or `discard`, to let go of library writers before the file is
deleted (a pyarrow writer left open would try to write its footer to a closed file when collected).
"""

from __future__ import annotations

from typing import BinaryIO, Protocol

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from datamill.dataio._arrow import check_columns, conform, dumps, text_column, widen_nulls


class Sink(Protocol):
    def write(self, batch: pa.RecordBatch) -> None: ...

    def finish(self) -> None: ...

    def discard(self) -> None: ...


class CsvSink:
    """csv/tsv: the header is the first batch's columns; every value is written as text, nested ones as JSON.

    A later batch missing a column gets empty cells; one with a new column is an error (the header is out).
    Nulls are empty cells and empty strings are written as "", which `open_dataset` reads back apart. In a
    one-column file a null is written as "" too, since an empty line would be skipped on reading.
    """

    def __init__(
        self, f: BinaryIO, path: str, delimiter: str = ",", *, neutralize_formulas: bool = False
    ) -> None:
        self._f = f
        self._path = path
        self._delimiter = delimiter
        self._neutralize = neutralize_formulas
        self._names: list[str] | None = None
        self._writer: pacsv.CSVWriter | None = None
        self._count = 0

    def write(self, batch: pa.RecordBatch) -> None:
        self._count += 1
        if self._names is None:
            self._names = list(batch.schema.names)
            schema = pa.schema([(name, pa.string()) for name in self._names])
            options = pacsv.WriteOptions(delimiter=self._delimiter)
            self._writer = pacsv.CSVWriter(self._f, schema, write_options=options)
        check_columns(self._path, self._names, batch, self._count)
        columns = []
        for name in self._names:
            index = batch.schema.get_field_index(name)
            column = text_column(batch.column(index)) if index >= 0 else pa.nulls(batch.num_rows, pa.string())
            if len(self._names) == 1:
                column = column.fill_null("")
            if self._neutralize:
                column = neutralize_formulas(column)
            columns.append(column)
        assert self._writer is not None
        self._writer.write_batch(pa.record_batch(columns, names=self._names))

    def finish(self) -> None:
        if self._writer is not None:
            self._writer.close()

    def discard(self) -> None:
        self.finish()


class JsonlSink:
    """jsonl: one JSON object per row and line; a null is written as null, nested values as JSON."""

    def __init__(self, f: BinaryIO, path: str) -> None:
        self._f = f

    def write(self, batch: pa.RecordBatch) -> None:
        self._f.write(b"".join(dumps(row, newline=True) for row in batch.to_pylist()))

    def finish(self) -> None:
        """Nothing closes a jsonl file."""

    def discard(self) -> None:
        """Nothing to let go of."""


class JsonSink:
    """json: one JSON array of row objects, written row by row so it is never held in memory."""

    def __init__(self, f: BinaryIO, path: str) -> None:
        self._f = f
        self._rows = 0
        f.write(b"[")

    def write(self, batch: pa.RecordBatch) -> None:
        parts = []
        for row in batch.to_pylist():
            parts.append(b"\n" if self._rows == 0 else b",\n")
            parts.append(dumps(row))
            self._rows += 1
        self._f.write(b"".join(parts))

    def finish(self) -> None:
        self._f.write(b"\n]\n" if self._rows else b"]\n")

    def discard(self) -> None:
        """Nothing to let go of."""


class ParquetSink:
    """parquet: the schema is fixed at the first batch; later batches are conformed to it.

    `null`-typed columns of the first batch (at any depth) are widened to string up front, since a column that
    is empty at first most likely holds text later; see `_arrow.conform` for the rest.
    """

    def __init__(self, f: BinaryIO, path: str) -> None:
        self._f = f
        self._path = path
        self._writer: pq.ParquetWriter | None = None
        self._schema = pa.schema([])
        self._count = 0

    def write(self, batch: pa.RecordBatch) -> None:
        self._count += 1
        if self._writer is None:
            fields = [field.with_type(widen_nulls(field.type)) for field in batch.schema]
            self._schema = pa.schema(fields, metadata=batch.schema.metadata)
            self._writer = pq.ParquetWriter(self._f, self._schema)
        self._writer.write_batch(conform(self._path, self._schema, batch, self._count))

    def finish(self) -> None:
        if self._writer is None:  # nothing was ever written: still leave a valid (column-less) file
            self._writer = pq.ParquetWriter(self._f, pa.schema([]))
        self._writer.close()

    def discard(self) -> None:
        if self._writer is not None:
            self._writer.close()


def neutralize_formulas(column: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """Text a spreadsheet would run as a formula, prefixed with ``'`` so it shows as text.

    A cell is a formula to Excel, LibreOffice and Google Sheets when it starts with ``=``, ``+``, ``-``,
    ``@``, a tab or a carriage return; such a cell gets a leading apostrophe, unless it is a plain number
    (``-3``, ``+1.5e3``), which no spreadsheet runs.
    """
    risky = pc.and_(
        pc.match_substring_regex(column, _FORMULA_START),
        pc.invert(pc.match_substring_regex(column, _PLAIN_NUMBER)),
    )
    quoted = pc.binary_join_element_wise("'", column, "")
    return pc.if_else(pc.fill_null(risky, False), quoted, column)


_FORMULA_START = "^[=+\\-@\t\r]"
_PLAIN_NUMBER = "^[+-]?([0-9]+([.][0-9]*)?|[.][0-9]+)([eE][+-]?[0-9]+)?$"


def make_sink(fmt: str, f: BinaryIO, path: str, *, neutralize_formulas: bool = False) -> Sink:
    """The sink for writable format `fmt` (one of `WRITE_FORMATS`).

    With `neutralize_formulas`, csv and tsv cells that a spreadsheet would run as formulas are written as text
    (see `neutralize_formulas`); other formats are not read by spreadsheets and are written as they are.
    """
    if fmt == "csv":
        return CsvSink(f, path, neutralize_formulas=neutralize_formulas)
    if fmt == "tsv":
        return CsvSink(f, path, delimiter="\t", neutralize_formulas=neutralize_formulas)
    if fmt == "jsonl":
        return JsonlSink(f, path)
    if fmt == "json":
        return JsonSink(f, path)
    return ParquetSink(f, path)
