"""Every blob store writes through the one `StreamingWriter`: hashed, counted, limited, all or nothing."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from datamill.store.blobs import (
    BlobStore,
    BlobTooLargeError,
    LocalBlobStore,
    StreamingWriter,
    blob_store_from_url,
)
from datamill.store.blobs.fsspec_store import FsspecBlobStore


@pytest.fixture(params=["local", "fsspec"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> BlobStore:
    if request.param == "local":
        return blob_store_from_url(str(tmp_path / "blobs"))
    # fsspec's local filesystem is transactional like S3 (its memory filesystem is not).
    return FsspecBlobStore(f"file://{tmp_path / 'remote'}")


def test_both_stores_use_the_one_writer(store: BlobStore) -> None:
    writer = store.open_writer("a/b.csv")
    assert isinstance(writer, StreamingWriter)
    writer.abort()
    assert isinstance(blob_store_from_url("file:///tmp/x"), LocalBlobStore)


def test_a_committed_blob_is_whole_and_described(store: BlobStore) -> None:
    writer = store.open_writer("a/b.csv")
    writer.write(b"q,a\n")
    assert not store.exists("a/b.csv")  # nothing visible before commit
    writer.write(b"1,2\n")
    info = writer.commit()
    assert (info.key, info.size, info.sha256) == ("a/b.csv", 8, hashlib.sha256(b"q,a\n1,2\n").hexdigest())
    with store.open_read("a/b.csv") as blob:
        assert blob.read() == b"q,a\n1,2\n"


def test_passing_the_limit_leaves_nothing(store: BlobStore) -> None:
    writer = store.open_writer("big.bin", max_bytes=5)
    writer.write(b"1234")
    with pytest.raises(BlobTooLargeError, match="limit of 5 bytes"):
        writer.write(b"56")
    writer.abort()  # a second abort is harmless
    assert not store.exists("big.bin")
