"""Blob storage: where uploaded files and run outputs live, behind one small interface.

A `BlobStore` (`base`) maps keys (``uploads/tn_1/up_2/data.csv``) to bytes. Every write streams through the
one `StreamingWriter` (`writer`), which hashes (sha256) and counts the bytes as they pass, enforces an
optional size limit as it goes, and makes the blob appear all at once on `commit`, so a reader never sees
half a file and a failed write leaves nothing behind. `LocalBlobStore` (`local`) keeps blobs under a
directory (the embedded default); `FsspecBlobStore` (`fsspec_store`) puts them on any fsspec URL (S3 first:
write-once at the final key); `blob_store_from_url` (`factory`) picks one. `cache` keeps bounded local
copies of remote blobs for the readers that need a path.
"""

from datamill.store.blobs.base import BlobInfo, BlobStore, BlobTooLargeError, BlobWriter, check_key
from datamill.store.blobs.factory import blob_store_from_url
from datamill.store.blobs.local import LocalBlobStore
from datamill.store.blobs.writer import StreamingWriter, write_stream

__all__ = [
    "BlobInfo",
    "BlobStore",
    "BlobTooLargeError",
    "BlobWriter",
    "LocalBlobStore",
    "StreamingWriter",
    "blob_store_from_url",
    "check_key",
    "write_stream",
]
