"""`LocalBlobStore`: blobs as files under a directory (the embedded default).

A blob is written to a hidden ``.<name>.<random>.part`` file beside its place and renamed into place when
complete. A process killed mid-write (an upload cut by ``kill -9``) leaves its ``.part`` file behind;
`LocalBlobStore.remove_stale_parts` removes those not written to for a day (run when the server starts).
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from datamill.store.blobs.base import BlobWriter, check_key
from datamill.store.blobs.writer import StreamingWriter

#: How long a ``.part`` file may go unwritten before `LocalBlobStore.remove_stale_parts` takes it.
STALE_PART_S = 24 * 3600.0


class _TempFileSink:
    """A temporary file beside the target, renamed into place on commit."""

    def __init__(self, target: Path) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
        self._file = os.fdopen(fd, "wb")
        self._tmp, self._target = Path(tmp), target

    def write(self, chunk: bytes) -> None:
        self._file.write(chunk)

    def commit(self) -> None:
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        os.replace(self._tmp, self._target)  # atomic on one filesystem: readers see old or new, never half

    def discard(self) -> None:
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
        return StreamingWriter(_TempFileSink(self._path(key)), key, max_bytes)

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

    def remove_stale_parts(self, older_than_s: float = STALE_PART_S) -> int:
        """Remove the ``.part`` files not modified for `older_than_s` seconds; how many there were.

        Such files are the leftovers of processes that died mid-write (the default age is a day).
        """
        if not self.root.is_dir():
            return 0
        stale_before = time.time() - older_than_s
        removed = 0
        for folder, _dirs, names in os.walk(self.root):
            for name in names:
                if not (name.startswith(".") and name.endswith(".part")):
                    continue
                path = Path(folder, name)
                try:
                    if path.stat().st_mtime < stale_before:
                        path.unlink()
                        removed += 1
                except FileNotFoundError:  # committed or discarded meanwhile
                    continue
        return removed
