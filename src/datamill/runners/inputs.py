"""A dataset's files as the one local file a run reads.

A dataset of one file is read where the blob store keeps it (a local copy for the duration of the block when
the store is remote). A batch upload has several files with one set of columns; they are combined, once, into
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


@dataclass(frozen=True)
class RunInput:
    """A local file with a dataset's rows, and its format."""

    path: Path
    format: str


@contextmanager
def dataset_input(store: Store, blobs: BlobStore, dataset_id: str, cache_dir: Path) -> Iterator[RunInput]:
    """The rows of `dataset_id`'s files as one local file, valid for the duration of the block.

    Raises:
        FileNotFoundError: the dataset has no files.
        DataFormatError: a file cannot be read.
    """
    with store.session() as session:
        files = repo.files_of(session, dataset_id)
    if not files:
        raise FileNotFoundError(f"dataset {dataset_id!r} has no files")
    if len(files) == 1:
        with blobs.local_path(files[0].blob_key) as path:
            yield RunInput(path, files[0].file_format)
        return
    target = cache_dir / f"{dataset_id}.parquet"
    if not target.is_file():
        _combine(blobs, files, target)
    yield RunInput(target, "parquet")


def _combine(blobs: BlobStore, files: list[DatasetFile], target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    with ExitStack() as stack:
        paths = [stack.enter_context(blobs.local_path(f.blob_key)) for f in files]
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
