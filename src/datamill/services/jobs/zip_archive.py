"""A ZIP written straight into a blob, with blobs copied into it: what the ZIP jobs of runs share.

Nothing is staged on local disk: `zip_into_blob` opens a blob writer and a ZIP over it (the writer is not
seekable, so zipfile writes data descriptors), commits the blob when the archive is complete and aborts
it on any error; `copy_blob` streams one stored file into the archive.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from contextlib import contextmanager

from datamill.store import BlobStore
from datamill.store.blobs import BlobWriter

_CHUNK = 1 << 20


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
    with blobs.open_read(key) as source, archive.open(path, "w", force_zip64=True) as sink:
        while chunk := source.read(_CHUNK):
            sink.write(chunk)
            if keep:
                kept += chunk
    return bytes(kept)
