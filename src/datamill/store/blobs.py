"""Blob storage: where uploaded files and run outputs live, behind one small interface.

A `BlobStore` maps keys (``uploads/tn_1/up_2/data.csv``) to bytes. Writes stream through a `BlobWriter`
that hashes (sha256) and counts the bytes as they pass, enforces an optional size limit as it goes, and makes
the blob appear all at once on `commit` (a temporary file renamed into place), so a reader never sees half a
file and a failed write leaves nothing behind. `LocalBlobStore` keeps blobs under a directory (the embedded
default); `FsspecBlobStore` (in `fsspec_blobs`) puts them on any fsspec URL (S3 first: write-once at the
final key). `blob_store_from_url` picks one.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import tempfile
from collections.abc import AsyncIterator, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO, Protocol

from datamill.core.errors import DatamillError


class BlobTooLargeError(DatamillError):
    """A write went past its size limit; nothing was stored."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        super().__init__(f"the file is larger than the limit of {limit} bytes")


@dataclass(frozen=True)
class BlobInfo:
    """A stored blob: its key, size in bytes and lowercase hex sha256."""

    key: str
    size: int
    sha256: str


class BlobWriter(Protocol):
    """A blob being written: `write` chunks, then `commit` (or `abort` to drop it)."""

    def write(self, chunk: bytes) -> None:
        """Append bytes; raises `BlobTooLargeError` (and aborts) when the limit is passed."""
        ...

    def commit(self) -> BlobInfo:
        """Make the blob visible under its key, replacing any earlier one."""
        ...

    def abort(self) -> None:
        """Drop what was written; harmless after commit or a second abort."""
        ...


class BlobStore(Protocol):
    """Keyed byte storage; see the module docstring."""

    #: What `blob_store_from_url` opens this store from (another process, or node, opens it again).
    url: str

    def open_writer(self, key: str, *, max_bytes: int | None = None) -> BlobWriter: ...

    def open_read(self, key: str) -> BinaryIO: ...

    def local_path(self, key: str) -> AbstractContextManager[Path]:
        """A local file holding the blob for the duration of the block (a copy when the store is remote)."""
        ...

    def version(self, key: str) -> str | None:
        """A tag that changes when the blob does (ETag and size on object stores), for caching local copies.

        None where `local_path` is the stored file itself, so a copy would only cost disk.
        """
        ...

    def exists(self, key: str) -> bool: ...

    def delete(self, key: str) -> None:
        """Remove a blob; a missing one is not an error."""
        ...


def check_key(key: str) -> PurePosixPath:
    """Validate a blob key: relative, '/'-separated, with no empty, '.' or '..' parts."""
    path = PurePosixPath(key)
    if not key or path.is_absolute() or any(part in ("", ".", "..") for part in key.split("/")):
        raise ValueError(f"invalid blob key {key!r}")
    return path


class HashingCounter:
    """Running sha256 and byte count with a limit; shared by the writers."""

    def __init__(self, max_bytes: int | None) -> None:
        self.size = 0
        self._hash = hashlib.sha256()
        self._max = max_bytes

    def add(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self._max is not None and self.size > self._max:
            raise BlobTooLargeError(self._max)
        self._hash.update(chunk)

    def hexdigest(self) -> str:
        return self._hash.hexdigest()


class _LocalWriter:
    def __init__(self, target: Path, key: str, max_bytes: int | None) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
        self._file = os.fdopen(fd, "wb")
        self._tmp, self._target, self._key = Path(tmp), target, key
        self._counter = HashingCounter(max_bytes)
        self._done = False

    def write(self, chunk: bytes) -> None:
        try:
            self._counter.add(chunk)
        except BlobTooLargeError:
            self.abort()
            raise
        self._file.write(chunk)

    def commit(self) -> BlobInfo:
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        os.replace(self._tmp, self._target)  # atomic on one filesystem: readers see old or new, never half
        self._done = True
        return BlobInfo(self._key, self._counter.size, self._counter.hexdigest())

    def abort(self) -> None:
        if self._done:
            return
        self._done = True
        self._file.close()
        self._tmp.unlink(missing_ok=True)


class LocalBlobStore:
    """Blobs as files under a root directory (created on first write)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).expanduser()
        self.url = str(self.root)

    def _path(self, key: str) -> Path:
        return self.root.joinpath(*check_key(key).parts)

    def open_writer(self, key: str, *, max_bytes: int | None = None) -> BlobWriter:
        return _LocalWriter(self._path(key), key, max_bytes)

    def open_read(self, key: str) -> BinaryIO:
        return self._path(key).open("rb")

    @contextmanager
    def local_path(self, key: str) -> Iterator[Path]:
        path = self._path(key)
        if not path.is_file():
            raise FileNotFoundError(f"no blob {key!r}")
        yield path

    def version(self, key: str) -> str | None:
        return None  # local_path is the file itself: nothing to cache

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)


async def write_stream(
    blobs: BlobStore, key: str, chunks: AsyncIterator[bytes], *, max_bytes: int | None = None
) -> BlobInfo:
    """Write an async stream of chunks to a blob without blocking the event loop.

    Raises:
        BlobTooLargeError: More than `max_bytes` arrived; nothing is stored.
    """
    writer = await asyncio.to_thread(blobs.open_writer, key, max_bytes=max_bytes)
    try:
        async for chunk in chunks:
            if chunk:
                await asyncio.to_thread(writer.write, chunk)
        return await asyncio.to_thread(writer.commit)
    except BaseException:
        writer.abort()
        raise


def blob_store_from_url(url: str) -> BlobStore:
    """A blob store for a local path (or ``file://`` URL), or any other fsspec URL (``s3://bucket/prefix``)."""
    if "://" not in url:
        return LocalBlobStore(url)
    if url.startswith("file://"):
        return LocalBlobStore(url.removeprefix("file://"))
    from datamill.store.fsspec_blobs import FsspecBlobStore  # fsspec is only needed for remote storage

    return FsspecBlobStore(url)
