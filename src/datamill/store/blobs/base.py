"""The blob store interface: keys, the stored blob's description, and the size-limit error."""

from __future__ import annotations

from contextlib import AbstractContextManager
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
