"""A dataset's files as the one local file a run reads.

A dataset of one file is read where the blob store keeps it; on remote storage (S3) it is read from a local
copy in ``<cache_dir>/blobs``, downloaded once per blob version and kept in a cache of bounded size
(`datamill.store.blobs.cache`), so a resume or a second run of the same input does not download it again.

A batch upload has several files with one set of columns; they are combined, once, into
``<cache_dir>/<dataset_id>.parquet`` with one schema unified over the files (a column that is text in a csv
and numbers in a json becomes text), in upload order. A dataset's files never change once its upload is
complete, so the combined file is reused by every later run, quote and resume.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from datamill.dataio import open_dataset
from datamill.pipelines.checkpoint import conform
from datamill.store import BlobStore, DatasetFile, Store
from datamill.store import datasets as repo
from datamill.store.blobs.cache import DEFAULT_CACHE_BYTES, cached_local_path


@dataclass(frozen=True)
class RunInput:
    """A local file with a dataset's rows, and its format."""

    path: Path
    format: str


@contextmanager
def dataset_input(
    store: Store,
    blobs: BlobStore,
    dataset_id: str,
    cache_dir: Path,
    *,
    cache_bytes: int = DEFAULT_CACHE_BYTES,
) -> Iterator[RunInput]:
    """The rows of `dataset_id`'s files as one local file, valid for the duration of the block.

    `cache_bytes` bounds the local copies of remote blobs under ``<cache_dir>/blobs``.

    Raises:
        FileNotFoundError: the dataset has no files.
        DataFormatError: a file cannot be read.
    """
    with store.session() as session:
        files = repo.files_of(session, dataset_id)
    if not files:
        raise FileNotFoundError(f"dataset {dataset_id!r} has no files")
    if len(files) == 1:
        with cached_local_path(blobs, files[0].blob_key, cache_dir / "blobs", max_bytes=cache_bytes) as path:
            yield RunInput(path, files[0].file_format)
        return
    target = cache_dir / f"{dataset_id}.parquet"
    if not target.is_file():
        _combine(blobs, files, target, cache_bytes)
    yield RunInput(target, "parquet")


def _combine(blobs: BlobStore, files: list[DatasetFile], target: Path, cache_bytes: int) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    copies = target.parent / "blobs"
    with ExitStack() as stack:
        paths = [
            stack.enter_context(cached_local_path(blobs, f.blob_key, copies, max_bytes=cache_bytes))
            for f in files
        ]
        schemas = []
        for file, path in zip(files, paths, strict=True):
            with open_dataset(path, format=file.file_format) as reader:
                schemas.append(reader.schema)
        schema = pa.unify_schemas(schemas, promote_options="permissive")
        tmp = target.with_name(f".{target.name}.partial")
        with pq.ParquetWriter(tmp, schema) as writer:
            for file, path in zip(files, paths, strict=True):
                with open_dataset(path, format=file.file_format) as reader:
                    for batch in reader:
                        writer.write_table(conform(pa.Table.from_batches([batch]), schema))
        tmp.replace(target)
