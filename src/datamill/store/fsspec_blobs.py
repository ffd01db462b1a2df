"""`FsspecBlobStore`: blobs on any fsspec filesystem (S3-compatible, GCS, memory, ...).

Writes go to a ``.part`` object first and are moved into place on commit, which is atomic on local and
memory filesystems and, on object stores, at least never exposes a half-written object under the real key.
Reading through `local_path` downloads the blob to a temporary file, because the data readers want a path.
"""

from __future__ import annotations

import secrets
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO, cast

from datamill.store.blobs import BlobInfo, BlobTooLargeError, BlobWriter, HashingCounter, check_key


class _FsspecWriter:
    def __init__(self, fs: Any, path: str, key: str, max_bytes: int | None) -> None:
        self._fs, self._path, self._key = fs, path, key
        self._tmp = f"{path}.{secrets.token_hex(6)}.part"
        parent = path.rsplit("/", 1)[0]
        fs.makedirs(parent, exist_ok=True)
        self._file = fs.open(self._tmp, "wb")
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
        self._file.close()
        self._fs.mv(self._tmp, self._path)
        self._done = True
        return BlobInfo(self._key, self._counter.size, self._counter.hexdigest())

    def abort(self) -> None:
        if self._done:
            return
        self._done = True
        self._file.close()
        if self._fs.exists(self._tmp):
            self._fs.rm(self._tmp)


class FsspecBlobStore:
    """Blobs under an fsspec URL prefix, e.g. ``s3://bucket/datamill`` or ``memory://blobs``."""

    def __init__(self, url: str, **storage_options: Any) -> None:
        import fsspec

        fs, root = fsspec.core.url_to_fs(url, **storage_options)
        self._fs: Any = fs
        self._root = str(root).rstrip("/")

    def _path(self, key: str) -> str:
        return f"{self._root}/{check_key(key).as_posix()}"

    def open_writer(self, key: str, *, max_bytes: int | None = None) -> BlobWriter:
        return _FsspecWriter(self._fs, self._path(key), key, max_bytes)

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

    def exists(self, key: str) -> bool:
        return bool(self._fs.exists(self._path(key)))

    def delete(self, key: str) -> None:
        path = self._path(key)
        if self._fs.exists(path):
            self._fs.rm(path)
