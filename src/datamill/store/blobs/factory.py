"""`blob_store_from_url`: the store for a URL."""

from __future__ import annotations

from datamill.store.blobs.base import BlobStore
from datamill.store.blobs.local import LocalBlobStore


def blob_store_from_url(url: str) -> BlobStore:
    """A blob store for a local path (or ``file://`` URL), or any other fsspec URL (``s3://bucket/prefix``)."""
    if "://" not in url:
        return LocalBlobStore(url)
    if url.startswith("file://"):
        return LocalBlobStore(url.removeprefix("file://"))
    from datamill.store.blobs.fsspec_store import FsspecBlobStore  # fsspec is only needed for remote storage

    return FsspecBlobStore(url)
