"""`FsspecBlobStore`: blobs on any fsspec filesystem (S3-compatible, GCS, memory, ...).

A write streams to the final key through fsspec's transactional file (``autocommit=False``), through the
one `StreamingWriter` (which hashes and counts the bytes as they pass): the parts are uploaded as they fill,
and nothing is visible under the key until `commit`, which on S3 is the one ``CompleteMultipartUpload`` call
(on GCS the finalize of a resumable upload, on the local filesystem a move into place; fsspec's memory
filesystem is not transactional). So a reader never sees half an object, and an aborted write (the size
limit passed, the client went away) aborts the multipart upload and leaves nothing. No temporary key is
written and copied: an S3 copy costs a second full write of every byte.

Endpoints and credentials come from the filesystem's own configuration; for S3 that is the standard AWS
environment (``AWS_ENDPOINT_URL_S3`` or ``AWS_ENDPOINT_URL`` for MinIO and other S3-compatible servers,
``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_DEFAULT_REGION``), read when the store is built.
Reading through `local_path` downloads the blob to a temporary file, because the data readers want a path;
runs read through a bounded cache instead (`datamill.store.blobs.cache`), keyed by `version`.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO, cast

from datamill.store.blobs.base import BlobWriter, check_key
from datamill.store.blobs.writer import StreamingWriter


class _TransactionalSink:
    """fsspec's transactional file: parts upload as they fill, the object appears on commit."""

    def __init__(self, fs: Any, path: str) -> None:
        from fsspec.implementations.local import LocalFileSystem

        if isinstance(fs, LocalFileSystem):  # object stores have no directories to make
            fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
        self._file: Any = fs.open(path, "wb", autocommit=False)

    def write(self, chunk: bytes) -> None:
        self._file.write(chunk)

    def commit(self) -> None:
        self._file.close()  # every byte is uploaded, still invisible under the key
        self._file.commit()  # the object appears whole

    def discard(self) -> None:
        """Drop the uncommitted file, so that its bytes never appear under the key."""
        from fsspec.spec import AbstractBufferedFile

        if isinstance(self._file, AbstractBufferedFile):
            self._file.discard()  # aborts the multipart upload on S3
            # Marked closed so that garbage collection does not flush (and so upload) the discarded buffer.
            self._file.closed = True
            return
        self._file.close()
        self._file.discard()


class FsspecBlobStore:
    """Blobs under an fsspec URL prefix, e.g. ``s3://bucket/datamill`` or ``memory://blobs``."""

    def __init__(self, url: str, **storage_options: Any) -> None:
        import fsspec

        # A filesystem of its own, so that it reads the environment (endpoint, keys) when the store is built
        # rather than reusing one fsspec cached with an older configuration.
        options = {"skip_instance_cache": True} | storage_options
        fs, root = fsspec.core.url_to_fs(url, **options)
        self._fs: Any = fs
        self._root = str(root).rstrip("/")
        self.url = url

    def _path(self, key: str) -> str:
        return f"{self._root}/{check_key(key).as_posix()}"

    def open_writer(self, key: str, *, max_bytes: int | None = None) -> BlobWriter:
        return StreamingWriter(_TransactionalSink(self._fs, self._path(key)), key, max_bytes)

    def open_read(self, key: str) -> BinaryIO:
        return cast(BinaryIO, self._fs.open(self._path(key), "rb"))

    @contextmanager
    def local_path(self, key: str) -> Iterator[Path]:
        name = check_key(key).name
        with tempfile.TemporaryDirectory(prefix="datamill-blob-") as tmp:
            target = Path(tmp) / name
            with self.open_read(key) as src, target.open("wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
            yield target

    def version(self, key: str) -> str:
        """The blob's ETag (or checksum, or modification time) and size: it changes when the blob does.

        Raises:
            FileNotFoundError: No such blob.
        """
        info: dict[str, Any] = self._fs.info(self._path(key))
        tag = next(
            (info[k] for k in ("ETag", "etag", "md5Hash", "mtime", "LastModified", "created") if info.get(k)),
            "",
        )
        return f"{str(tag).strip(chr(34))}:{info.get('size')}"

    def exists(self, key: str) -> bool:
        return bool(self._fs.exists(self._path(key)))

    def delete(self, key: str) -> None:
        path = self._path(key)
        if self._fs.exists(path):
            self._fs.rm(path)
