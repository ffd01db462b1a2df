"""`FsspecBlobStore` on a moto S3 server, and the bounded local cache runs read remote inputs through:
write-once commits, aborts that leave no object and no open multipart upload, one download per blob version,
eviction of the least recently used copies, and never of a copy being read."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import pytest
from s3_helpers import BUCKET, S3Server, moto_s3

from datamill.store import BlobTooLargeError, LocalBlobStore, blob_store_from_url
from datamill.store.blobs.cache import cached_local_path
from datamill.store.blobs.fsspec_store import FsspecBlobStore


@pytest.fixture(scope="module")
def s3() -> Iterator[S3Server]:
    with moto_s3() as server:
        server.make_bucket()
        yield server


@pytest.fixture
def blobs(s3: S3Server, request: pytest.FixtureRequest) -> FsspecBlobStore:
    store = blob_store_from_url(f"s3://{BUCKET}/{request.node.name}")
    assert isinstance(store, FsspecBlobStore)
    return store


class CountingReads:
    """A blob store that counts the downloads (open_read) going through it."""

    def __init__(self, inner: FsspecBlobStore) -> None:
        self.inner, self.reads = inner, 0

    def open_read(self, key: str) -> BinaryIO:
        self.reads += 1
        return self.inner.open_read(key)

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)


def _put(blobs: FsspecBlobStore, key: str, data: bytes) -> None:
    writer = blobs.open_writer(key)
    writer.write(data)
    writer.commit()


def test_an_object_appears_only_on_commit_with_the_hash_of_its_stream(
    blobs: FsspecBlobStore, s3: S3Server, request: pytest.FixtureRequest
) -> None:
    prefix = f"{request.node.name}/"
    writer = blobs.open_writer("uploads/t/a.csv")
    for chunk in (b"question,answer\n", b"q,a\n" * 1000):
        writer.write(chunk)
    assert s3.bucket_objects(prefix=prefix) == {}
    assert not blobs.exists("uploads/t/a.csv")
    info = writer.commit()
    data = b"question,answer\n" + b"q,a\n" * 1000
    assert (info.size, info.sha256) == (len(data), hashlib.sha256(data).hexdigest())
    assert s3.bucket_objects(prefix=prefix) == {f"{prefix}uploads/t/a.csv": data}  # no temporary key left
    _put(blobs, "uploads/t/a.csv", b"new")
    with blobs.open_read("uploads/t/a.csv") as handle:
        assert handle.read() == b"new"  # a commit replaces the earlier object


def test_an_aborted_write_leaves_no_object_and_no_multipart_upload(
    blobs: FsspecBlobStore, s3: S3Server, request: pytest.FixtureRequest
) -> None:
    writer = blobs.open_writer("uploads/t/big.csv", max_bytes=10)
    writer.write(b"12345")
    with pytest.raises(BlobTooLargeError):
        writer.write(b"678901")
    writer.abort()  # a second abort is harmless
    dropped = blobs.open_writer("uploads/t/dropped.csv")
    dropped.write(b"abc")
    dropped.abort()
    assert s3.bucket_objects(prefix=f"{request.node.name}/") == {}
    assert s3.open_multipart_uploads() == []


def test_the_version_changes_with_the_content_and_delete_is_idempotent(blobs: FsspecBlobStore) -> None:
    _put(blobs, "k.csv", b"one")
    first = blobs.version("k.csv")
    _put(blobs, "k.csv", b"two")
    assert blobs.version("k.csv") != first
    blobs.delete("k.csv")
    blobs.delete("k.csv")
    assert not blobs.exists("k.csv")
    with pytest.raises(FileNotFoundError):
        blobs.version("k.csv")


def test_a_blob_is_downloaded_once_per_version(blobs: FsspecBlobStore, tmp_path: Path) -> None:
    counting = CountingReads(blobs)
    _put(blobs, "in/data.csv", b"a,b\n1,2\n")
    for _ in range(3):
        with cached_local_path(counting, "in/data.csv", tmp_path) as path:  # type: ignore[arg-type]
            assert path.read_bytes() == b"a,b\n1,2\n"
            assert path.suffix == ".csv"
    assert counting.reads == 1
    _put(blobs, "in/data.csv", b"a,b\n3,4\n")
    with cached_local_path(counting, "in/data.csv", tmp_path) as path:  # type: ignore[arg-type]
        assert path.read_bytes() == b"a,b\n3,4\n"  # a changed blob is never served from a stale copy
    assert counting.reads == 2


def test_the_cache_evicts_the_least_recently_used_copies(blobs: FsspecBlobStore, tmp_path: Path) -> None:
    for name in "abc":
        _put(blobs, f"{name}.bin", name.encode() * 100)
    for step, name in enumerate("abc"):
        with cached_local_path(blobs, f"{name}.bin", tmp_path, max_bytes=250) as path:
            os.utime(path, (step, step))  # a distinct, ordered last use without sleeping
    remaining = sorted(p.read_bytes()[:1] for p in tmp_path.iterdir())
    assert remaining == [b"b", b"c"]  # 300 bytes over a 250-byte limit: the oldest copy went
    assert sum(p.stat().st_size for p in tmp_path.iterdir()) <= 250


def test_a_copy_being_read_is_never_evicted(blobs: FsspecBlobStore, tmp_path: Path) -> None:
    _put(blobs, "held.bin", b"h" * 200)
    _put(blobs, "next.bin", b"n" * 200)
    with cached_local_path(blobs, "held.bin", tmp_path, max_bytes=100) as held:
        os.utime(held, (0, 0))  # the oldest, so the first to go if it could
        with cached_local_path(blobs, "next.bin", tmp_path, max_bytes=100) as other:
            assert held.read_bytes() == b"h" * 200
            assert other.read_bytes() == b"n" * 200
    with cached_local_path(blobs, "next.bin", tmp_path, max_bytes=100):
        pass
    assert not held.exists()  # once released, the limit is enforced again


def test_a_local_store_is_read_in_place(tmp_path: Path) -> None:
    local = LocalBlobStore(tmp_path / "blobs")
    writer = local.open_writer("x/data.csv")
    writer.write(b"a\n1\n")
    writer.commit()
    with cached_local_path(local, "x/data.csv", tmp_path / "cache") as path:
        assert path == tmp_path / "blobs" / "x" / "data.csv"
    assert not (tmp_path / "cache").exists()


def test_what_a_killed_download_left_is_cleaned_up(blobs: FsspecBlobStore, tmp_path: Path) -> None:
    tmp_path.joinpath(".old.csv.0000.part").write_bytes(b"half")
    os.utime(tmp_path / ".old.csv.0000.part", (0, 0))
    tmp_path.joinpath(".new.csv.0001.part").write_bytes(b"in progress")  # another worker's, right now
    _put(blobs, "d.csv", b"a\n1\n")
    with cached_local_path(blobs, "d.csv", tmp_path):
        pass
    assert not (tmp_path / ".old.csv.0000.part").exists()
    assert (tmp_path / ".new.csv.0001.part").exists()
