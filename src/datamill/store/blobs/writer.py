"""The one blob writer: every store's writes go through it.

`StreamingWriter` hashes (sha256) and counts the bytes as they pass and enforces the size limit as it goes;
where the bytes go until `commit` makes them visible under the key is the store's `BlobSink` (a temporary
file renamed into place on a local disk, fsspec's transactional file on object stores). So every store
gives the same guarantees: a reader never sees half a blob, and a write that fails or passes its limit
leaves nothing behind.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from typing import Protocol

from datamill.store.blobs.base import BlobInfo, BlobStore, BlobTooLargeError


class BlobSink(Protocol):
    """Where a store keeps a blob's bytes while it is written."""

    def write(self, chunk: bytes) -> None: ...

    def commit(self) -> None:
        """Make the bytes visible under the key, all at once."""
        ...

    def discard(self) -> None:
        """Drop the bytes; nothing appears under the key."""
        ...


class StreamingWriter:
    """A blob being written into `sink`: `write` chunks, then `commit` (or `abort` to drop it)."""

    def __init__(self, sink: BlobSink, key: str, max_bytes: int | None) -> None:
        self._sink, self._key, self._max = sink, key, max_bytes
        self._hash = hashlib.sha256()
        self._size = 0
        self._done = False

    def write(self, chunk: bytes) -> None:
        """Append bytes; raises `BlobTooLargeError` (and aborts) when the limit is passed."""
        self._size += len(chunk)
        if self._max is not None and self._size > self._max:
            self.abort()
            raise BlobTooLargeError(self._max)
        self._hash.update(chunk)
        self._sink.write(chunk)

    def commit(self) -> BlobInfo:
        """Make the blob visible under its key, replacing any earlier one."""
        self._sink.commit()
        self._done = True
        return BlobInfo(self._key, self._size, self._hash.hexdigest())

    def abort(self) -> None:
        """Drop what was written; harmless after commit or a second abort."""
        if self._done:
            return
        self._done = True
        self._sink.discard()


async def write_stream(
    blobs: BlobStore, key: str, chunks: AsyncIterator[bytes], *, max_bytes: int | None = None
) -> BlobInfo:
    """Write an async stream of chunks to a blob without blocking the event loop.

    Raises:
        BlobTooLargeError: More than `max_bytes` arrived; nothing is stored.
    """
    writer = await asyncio.to_thread(blobs.open_writer, key, max_bytes=max_bytes)
    try:
        async for chunk in chunks:
            if chunk:
                await asyncio.to_thread(writer.write, chunk)
        return await asyncio.to_thread(writer.commit)
    except BaseException:
        writer.abort()
        raise
