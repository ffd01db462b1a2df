"""The store: migrations build exactly the models' schema; blob stores write atomically, hashed, limited."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from datamill.store import BlobStore, BlobTooLargeError, LocalBlobStore, Store, blob_store_from_url
from datamill.store.blobs import write_stream
from datamill.store.blobs.fsspec_store import FsspecBlobStore
from datamill.store.models import Base


def test_migrations_build_the_models_schema(tmp_path: Path) -> None:
    store = Store.from_url(f"sqlite:///{tmp_path / 'deep' / 'fresh.db'}")
    try:
        store.migrate()
        store.migrate()  # a second start is a no-op
        with store.engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            assert compare_metadata(context, Base.metadata) == []
            tables = set(inspect(connection).get_table_names())
        assert tables == set(Base.metadata.tables) | {"alembic_version"}
    finally:
        store.close()


def _stores(tmp_path: Path) -> list[BlobStore]:
    return [LocalBlobStore(tmp_path / "local"), FsspecBlobStore(str(tmp_path / "fsspec"))]


@pytest.fixture(params=["local", "fsspec"])
def blobs(request: pytest.FixtureRequest, tmp_path: Path) -> BlobStore:
    if request.param == "local":
        return LocalBlobStore(tmp_path / "local")
    return FsspecBlobStore(str(tmp_path / "fsspec"))


def test_a_blob_appears_only_on_commit_with_its_hash(blobs: BlobStore) -> None:
    writer = blobs.open_writer("uploads/t/u/data.csv")
    writer.write(b"hello ")
    writer.write(b"world")
    assert not blobs.exists("uploads/t/u/data.csv")
    info = writer.commit()
    assert (info.size, info.sha256) == (11, hashlib.sha256(b"hello world").hexdigest())
    with blobs.open_read("uploads/t/u/data.csv") as handle:
        assert handle.read() == b"hello world"
    with blobs.local_path("uploads/t/u/data.csv") as path:
        assert path.read_bytes() == b"hello world"
    blobs.delete("uploads/t/u/data.csv")
    assert not blobs.exists("uploads/t/u/data.csv")


def test_an_aborted_or_oversized_write_leaves_nothing(blobs: BlobStore, tmp_path: Path) -> None:
    writer = blobs.open_writer("a/b.bin")
    writer.write(b"partial")
    writer.abort()
    limited = blobs.open_writer("a/c.bin", max_bytes=4)
    limited.write(b"1234")
    with pytest.raises(BlobTooLargeError):
        limited.write(b"5")
    assert not blobs.exists("a/b.bin")
    assert not blobs.exists("a/c.bin")
    leftovers = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert leftovers == []


@pytest.mark.parametrize("key", ["", "/abs", "a/../b", "a//b", "./a"])
def test_keys_cannot_escape_the_root(key: str, tmp_path: Path) -> None:
    for store in _stores(tmp_path):
        with pytest.raises(ValueError, match="invalid blob key"):
            store.open_writer(key)


async def test_write_stream_counts_and_limits(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)

    async def chunks(n: int) -> AsyncIterator[bytes]:
        for _ in range(n):
            yield b"abc"

    info = await write_stream(store, "k/ok", chunks(3), max_bytes=9)
    assert (info.size, info.sha256) == (9, hashlib.sha256(b"abc" * 3).hexdigest())
    with pytest.raises(BlobTooLargeError):
        await write_stream(store, "k/big", chunks(4), max_bytes=9)
    assert not store.exists("k/big")


def test_blob_store_from_url_picks_the_adapter(tmp_path: Path) -> None:
    assert isinstance(blob_store_from_url(str(tmp_path)), LocalBlobStore)
    assert isinstance(blob_store_from_url(f"file://{tmp_path}"), LocalBlobStore)
    assert isinstance(blob_store_from_url("memory://datamill-test"), FsspecBlobStore)
