"""`DatasetWriter`: record batches written to a file atomically, so a reader never sees half a file.

Bytes go to a temporary file beside the target, `<path>.partial-<random>`; `close` flushes it to disk and
renames it into place in one step, and `abort` (or any exception inside a `with` block, or a failed
`write_batch`) removes it, leaving whatever was at `path` before untouched.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

import orjson
import pyarrow as pa

from datamill.core.errors import DataFormatError
from datamill.dataio._formats import WRITE_FORMATS, detect_format
from datamill.dataio._sinks import Sink, make_sink


class DatasetWriter:
    """A file being written batch by batch; a context manager that closes on success and aborts on error.

    Attributes:
        path: The target file (written only by `close`).
        format: 'csv', 'tsv', 'json', 'jsonl' or 'parquet'.
        rows_written: Rows accepted so far.
    """

    def __init__(self, path: str, fmt: str, *, neutralize_formulas: bool = False) -> None:
        self.path = path
        self.format = fmt
        self.rows_written = 0
        self._state = "open"
        self._temp = f"{path}.partial-{secrets.token_hex(6)}"
        self._file: BinaryIO = open(self._temp, "xb")  # noqa: SIM115 - closed by close() or abort()
        self._batches = 0
        try:
            self._sink: Sink = make_sink(fmt, self._file, path, neutralize_formulas=neutralize_formulas)
        except BaseException:
            self._file.close()
            Path(self._temp).unlink(missing_ok=True)
            raise

    def write_batch(self, batch: pa.RecordBatch | pa.Table) -> None:
        """Append the rows of a batch or table; on failure the writer aborts and re-raises.

        Raises:
            DataFormatError: The batch does not fit the columns or types fixed by the first one (csv, tsv,
                parquet), or a value cannot be written in the format.
            ValueError: The writer is already closed or aborted.
        """
        self._check_open()
        batches = batch.to_batches() if isinstance(batch, pa.Table) else [batch]
        if not batches and self._batches == 0:
            batches = [pa.RecordBatch.from_pylist([], schema=batch.schema)]  # let the sink learn the schema
        try:
            for item in batches:
                self._sink.write(item)
                self._batches += 1
                self.rows_written += item.num_rows
        except BaseException as exc:
            self.abort()
            if isinstance(exc, pa.ArrowException | orjson.JSONEncodeError):
                raise DataFormatError(self.path, f"cannot write {self.format}: {exc}") from exc
            raise

    def close(self) -> None:
        """Finish the file and rename it into place. Closing twice is harmless.

        Raises:
            ValueError: The writer was aborted.
        """
        if self._state == "closed":
            return
        self._check_open()
        try:
            self._sink.finish()
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            os.replace(self._temp, self.path)
        except BaseException:
            self.abort()
            raise
        self._state = "closed"

    def abort(self) -> None:
        """Drop everything written: the temporary file is removed and `path` is left as it was."""
        if self._state != "open":
            return
        self._state = "aborted"
        # The bytes are being thrown away: failing to let go of them must not hide the error that got us here.
        with contextlib.suppress(Exception):
            self._sink.discard()
        self._file.close()
        Path(self._temp).unlink(missing_ok=True)

    def _check_open(self) -> None:
        if self._state != "open":
            raise ValueError(f"the writer of {self.path} is {self._state}")

    def __enter__(self) -> DatasetWriter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def __repr__(self) -> str:
        return f"DatasetWriter(path={self.path!r}, format={self.format!r}, rows_written={self.rows_written})"


def check_writable(path: str | Path, *, format: str | None = None) -> str:
    """Check, before any work, that `path` can be written in `format`; returns the format.

    The format must be one datamill writes (named, or told from the extension), `path` must not be a
    directory, and the folder it goes in must exist and be writable. Nothing is created.

    Raises:
        DataFormatError: The format is unknown or read-only, or the path cannot be written; the message
            says which and what to do.
    """
    name = str(path)
    fmt = detect_format(name, format, supported=WRITE_FORMATS)
    target = Path(name)
    if target.is_dir():
        raise DataFormatError(name, "is a directory; give a file name for the output")
    folder = target.parent if str(target.parent) else Path(".")
    if not folder.is_dir():
        raise DataFormatError(name, f"the folder {str(folder)!r} does not exist; create it first")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise DataFormatError(name, f"the folder {str(folder)!r} is not writable")
    if target.exists() and not os.access(target, os.W_OK):
        raise DataFormatError(name, "the file exists and is not writable")
    return fmt


def open_writer(
    path: str | Path, *, format: str | None = None, neutralize_formulas: bool = False
) -> DatasetWriter:
    """Open a writer for `path`; the format is told from the extension unless given.

    With `neutralize_formulas`, csv and tsv cells a spreadsheet would run as formulas (``=…``, ``+…``,
    ``-…``, ``@…``) are written with a leading ``'`` so they show as text; numbers are left as they are.

    Raises:
        DataFormatError: The format is unknown or cannot be written (xlsx and txt are read-only).
    """
    name = str(path)
    fmt = detect_format(name, format, supported=WRITE_FORMATS)
    return DatasetWriter(name, fmt, neutralize_formulas=neutralize_formulas)


def write_table(path: str | Path, table: pa.Table | pa.RecordBatch, *, format: str | None = None) -> None:
    """Write a whole table to `path` atomically (see `open_writer`)."""
    with open_writer(path, format=format) as writer:
        writer.write_batch(table)
