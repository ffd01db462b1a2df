"""A bounded local cache of remote blobs, for readers that want a file path (the runs' data readers).

A blob on object storage is downloaded once into ``<cache dir>/<hash of key>-<hash of version><suffix>``,
where the version is the store's `BlobStore.version` (ETag and size on S3): a changed blob is a new entry,
and every later run, quote and resume of the same input reads the local copy. Stores whose `local_path` is
already local (version None) are read in place, never copied.

Disk use is bounded: after a download, the least recently used entries are removed until the cache is within
its byte limit again. A reader holds a shared ``flock`` on its entry for the duration of its block and the
evictor only removes an entry it can lock exclusively, so workers sharing a data dir never delete a file
another is reading (locks are POSIX advisory locks, so the cache is meant for a local disk). The entry being
read may alone exceed the limit: a run must read its input whole. A download goes to a hidden ``.part`` file
first; one left by a killed process is removed an hour later.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import secrets
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath

from datamill.store.blobs.base import BlobStore

DEFAULT_CACHE_BYTES = 10 << 30
_ATTEMPTS = 3
_STALE_PART_S = 3600  # a download still being written is younger than this


def _digest(text: str, length: int) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def _lock_shared(path: Path) -> int | None:
    """A descriptor holding a shared lock on `path`, or None if it is gone (or was evicted meanwhile)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    fcntl.flock(fd, fcntl.LOCK_SH)
    if os.fstat(fd).st_nlink == 0:  # unlinked by an evictor between our open and our lock
        os.close(fd)
        return None
    return fd


def _download(blobs: BlobStore, key: str, entry: Path) -> None:
    """Fetch the blob into `entry` without ever exposing a partial file under that name."""
    tmp = entry.with_name(f".{entry.name}.{secrets.token_hex(4)}.part")
    try:
        with blobs.open_read(key) as src, tmp.open("wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
        with contextlib.suppress(FileExistsError):  # another worker got there first: keep its copy
            os.link(tmp, entry)
    finally:
        tmp.unlink(missing_ok=True)


def _entries(cache_dir: Path) -> list[tuple[float, int, Path]]:
    """(last use, size, path) of each entry; removes what downloads killed midway left behind."""
    entries, stale_before = [], time.time() - _STALE_PART_S
    for path in cache_dir.iterdir():
        with contextlib.suppress(FileNotFoundError):
            stat = path.stat()
            if not path.name.startswith("."):
                entries.append((stat.st_mtime, stat.st_size, path))
            elif path.name.endswith(".part") and stat.st_mtime < stale_before:
                path.unlink()
    return entries


def evict(cache_dir: Path, max_bytes: int, keep: Path | None = None) -> None:
    """Remove least recently used, unlocked entries until the cache holds at most `max_bytes`."""
    entries = _entries(cache_dir)
    total = sum(size for _, size, _ in entries)
    for _, size, path in sorted(entries):
        if total <= max_bytes:
            return
        if path != keep and _remove_unlocked(path):
            total -= size


def _remove_unlocked(path: Path) -> bool:
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return False  # a reader holds it
    try:
        path.unlink(missing_ok=True)
    finally:
        os.close(fd)
    return True


@contextmanager
def cached_local_path(
    blobs: BlobStore, key: str, cache_dir: Path, *, max_bytes: int = DEFAULT_CACHE_BYTES
) -> Iterator[Path]:
    """A local file with the blob's bytes, valid (and protected from eviction) for the duration of the block.

    Raises:
        FileNotFoundError: No such blob.
    """
    version = blobs.version(key)
    if version is None:
        with blobs.local_path(key) as path:
            yield path
        return
    cache_dir.mkdir(parents=True, exist_ok=True)
    entry = cache_dir / f"{_digest(key, 40)}-{_digest(version, 16)}{PurePosixPath(key).suffix}"
    fd = _lock_shared(entry)
    for _ in range(_ATTEMPTS):
        if fd is not None:
            break
        _download(blobs, key, entry)
        fd = _lock_shared(entry)
    if fd is None:
        raise RuntimeError(f"the local copy of blob {key!r} was evicted {_ATTEMPTS} times while fetched")
    try:
        os.utime(fd)  # most recently used
        evict(cache_dir, max_bytes, keep=entry)
        yield entry
    finally:
        os.close(fd)
