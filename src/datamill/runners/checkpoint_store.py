"""Run checkpoints on object storage: the `BatchCheckpoint` layout under any fsspec URL (S3 first).

`FsspecCheckpoint` keeps exactly what `datamill.pipelines.checkpoint.DirectoryCheckpoint` keeps in a local
directory (``manifest.json`` with the run's fingerprint, ``parts/<batch>.parquet``,
``rejected/<batch>.jsonl``) under a URL such as ``s3://bucket/datamill/runs/<run_id>``, so any worker on any
machine, or any Ray actor, can save batches of a run and resume it. Each file is written with one PUT, which
object stores apply whole or not at all; the part is written after the batch's rejections, so a part present
means its batch is done. Listings are read fresh each time (another process may have saved a batch since).

`checkpoint_at` opens the right one for a location: a local path gets a `DirectoryCheckpoint` (renames make
its writes atomic), a URL with a scheme gets an `FsspecCheckpoint`.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from datamill.pipelines.checkpoint import BatchCheckpoint, DirectoryCheckpoint, conform

_MANIFEST = "manifest.json"


def checkpoint_at(location: str | Path, fingerprint: str) -> BatchCheckpoint:
    """The checkpoint at a local directory or an fsspec URL (``s3://...``)."""
    text = str(location)
    if "://" not in text or text.startswith("file://"):
        return DirectoryCheckpoint(Path(text.removeprefix("file://")), fingerprint)
    return FsspecCheckpoint(text, fingerprint)


class FsspecCheckpoint:
    """A run's checkpoint under an fsspec URL; see the module docstring."""

    def __init__(self, url: str, fingerprint: str) -> None:
        from fsspec.core import url_to_fs

        self.url, self.fingerprint = url.rstrip("/"), fingerprint
        self._fs: Any
        self._fs, self._root = url_to_fs(self.url)
        manifest = f"{self._root}/{_MANIFEST}"
        self._fs.invalidate_cache()
        if self._fs.exists(manifest):
            if orjson.loads(self._fs.cat_file(manifest)).get("fingerprint") == fingerprint:
                return
            self.remove()  # the run's input, request or model changed: start over
        self._fs.pipe_file(manifest, orjson.dumps({"fingerprint": fingerprint}))

    def completed(self) -> set[int]:
        return {int(name.rsplit("/", 1)[-1].split(".")[0]) for name in self._parts()}

    def save(self, index: int, rows: list[dict[str, Any]], rejections: list[dict[str, Any]]) -> None:
        lines = b"".join(orjson.dumps(r, default=str) + b"\n" for r in rejections)
        self._fs.pipe_file(f"{self._root}/rejected/{index:08d}.jsonl", lines)
        buffer = io.BytesIO()
        pq.write_table(pa.Table.from_pylist(rows) if rows else pa.table({}), buffer)
        self._fs.pipe_file(f"{self._root}/parts/{index:08d}.parquet", buffer.getvalue())

    def iter_output(self, *, internal: bool = False) -> Iterator[pa.Table]:
        """The saved rows in batch order, conformed to one schema (as `DirectoryCheckpoint.iter_output`)."""
        tables = [self._read(path) for path in self._parts()]
        tables = [t for t in tables if t.num_rows]
        if not tables:
            return
        schema = pa.unify_schemas([t.schema for t in tables], promote_options="permissive")
        if not internal:
            schema = pa.schema([f for f in schema if not f.name.startswith("_")])
        for table in tables:
            yield conform(table, schema)

    def output_rows(self) -> int:
        return sum(self._read(path).num_rows for path in self._parts())

    def iter_rejections(self) -> Iterator[dict[str, Any]]:
        for path in self._list("rejected", ".jsonl"):
            for line in self._fs.cat_file(path).splitlines():
                if line.strip():
                    yield orjson.loads(line)

    def remove(self) -> None:
        self._fs.invalidate_cache()
        if self._fs.exists(self._root):
            self._fs.rm(self._root, recursive=True)

    def _parts(self) -> list[str]:
        return self._list("parts", ".parquet")

    def _list(self, folder: str, suffix: str) -> list[str]:
        self._fs.invalidate_cache()
        found = self._fs.find(f"{self._root}/{folder}")
        return sorted(p for p in found if p.endswith(suffix))

    def _read(self, path: str) -> pa.Table:
        with pq.ParquetFile(io.BytesIO(self._fs.cat_file(path))) as part:
            return part.read(use_threads=False)
