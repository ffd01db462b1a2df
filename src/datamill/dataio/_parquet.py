"""Reading Parquet files batch by batch with `ParquetFile.iter_batches`, types as stored.

A file whose columns repeat a name keeps every column: the repeats get a ``_2``, ``_3`` suffix (see `_names`).
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq

from datamill.core.errors import DataFormatError
from datamill.dataio._names import renamed_batch, unique_names, warn_renamed
from datamill.dataio._source import BatchStream, ReadOptions, SourceFactory


def _open(path: str) -> pq.ParquetFile:
    try:
        return pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as exc:
        raise DataFormatError(path, f"not a valid Parquet file ({exc})") from exc


def _stream(path: str, batch_size: int) -> BatchStream:
    parquet = _open(path)
    names = parquet.schema_arrow.names
    unique, renamed = unique_names(names)
    warn_renamed(path, names, renamed)
    rows = 0
    try:
        for batch in parquet.iter_batches(batch_size=batch_size):
            rows += batch.num_rows
            yield renamed_batch(batch, unique, renamed) if renamed else batch
    except pa.ArrowException as exc:
        raise DataFormatError(path, f"corrupt Parquet data ({exc})") from exc
    finally:
        parquet.close()
    if rows == 0:
        names = ", ".join(parquet.schema_arrow.names)
        raise DataFormatError(path, f"file is empty: it has columns ({names}) but no rows")


def count_parquet_rows(path: str) -> int:
    """The row count from the file's footer, without reading any data."""
    parquet = _open(path)
    try:
        return int(parquet.metadata.num_rows)
    finally:
        parquet.close()


def parquet_source(path: str, options: ReadOptions) -> SourceFactory:
    """Check that `path` is a Parquet file and return its batch source."""
    _open(path).close()
    return lambda: _stream(path, options.batch_size)
