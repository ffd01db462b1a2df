"""A ZIP written straight into a blob, with blobs copied into it: what the ZIP jobs of runs share.

Nothing is staged on local disk: `zip_into_blob` opens a blob writer and a ZIP over it (the writer is not
seekable, so zipfile writes data descriptors), commits the blob when the archive is complete and aborts
it on any error; `copy_blob` streams one stored file into the archive.

A ZIP job that cannot finish fails with a message a caller can act on (`zip_failure`), naming the run's
file that cannot be read (`StoredFileUnreadable`: missing from storage, or storage not reachable) or saying
the archive could not be written; the storage's own paths stay in the server log.
"""

from __future__ import annotations

import logging
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import BinaryIO

from datamill.core.error_codes import ErrorCode, error_data
from datamill.core.errors import DatamillError
from datamill.store import BlobStore
from datamill.store.blobs import BlobWriter
from datamill.store.runs import RunOutcome

_CHUNK = 1 << 20
log = logging.getLogger(__name__)


class StoredFileUnreadable(DatamillError):
    """A file of the run cannot be read from blob storage (deleted, or storage misconfigured)."""

    def __init__(self, path: str) -> None:
        self.path = path
        super().__init__(
            f"the run's file {path} cannot be read from storage (it was deleted, or storage is "
            "misconfigured or unreachable)"
        )


class _WriterStream:
    """A write-only, non-seekable file over a blob writer."""

    def __init__(self, writer: BlobWriter) -> None:
        self._writer = writer

    def write(self, data: bytes) -> int:
        self._writer.write(bytes(data))
        return len(data)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass  # `zip_into_blob` commits or aborts the writer


@contextmanager
def zip_into_blob(blobs: BlobStore, key: str) -> Iterator[zipfile.ZipFile]:
    """A ZIP being written into the blob `key`; the blob exists only if the block ends without error."""
    writer = blobs.open_writer(key)
    try:
        with zipfile.ZipFile(_WriterStream(writer), "w", zipfile.ZIP_DEFLATED) as archive:
            yield archive
        writer.commit()
    except BaseException:
        writer.abort()
        raise


def copy_blob(
    blobs: BlobStore, key: str, archive: zipfile.ZipFile, path: str, *, keep: bool = False
) -> bytes:
    """Stream the blob `key` into `archive` as `path`; the bytes copied when `keep` (else empty)."""
    kept = bytearray()
    try:
        source = blobs.open_read(key)
    except OSError as exc:
        raise StoredFileUnreadable(path) from exc
    with source, archive.open(path, "w", force_zip64=True) as sink:
        while chunk := _read(source, path):
            sink.write(chunk)
            if keep:
                kept += chunk
    return bytes(kept)


def _read(source: BinaryIO, path: str) -> bytes:
    try:
        return source.read(_CHUNK)
    except OSError as exc:
        raise StoredFileUnreadable(path) from exc


def zip_failure(job_id: str, exc: StoredFileUnreadable | OSError) -> RunOutcome:
    """The failed outcome of ZIP job `job_id` stopped by `exc`, logged with the storage's details."""
    log.error("ZIP job %s failed: %s", job_id, exc, exc_info=exc)
    if isinstance(exc, StoredFileUnreadable):
        return RunOutcome("failed", error_data=error_data(ErrorCode.INPUT_UNREADABLE, str(exc)))
    message = "the ZIP could not be written to storage; the server log has the details"
    return RunOutcome("failed", error_data=error_data(ErrorCode.INTERNAL, message))
