"""A seed dataset's files, copied from the blob store into a temporary folder and read as seed samples.

The folder is laid out so that `datamill.steps.generation.seeds.load_seeds` reads each dataset type as it
means: SINGLE_FILE is the one file (each row a sample), MULTI_FILE a folder of files (each file a sample),
MULTI_FOLDER a folder of folders (each folder a sample). Names come from the stored paths, reduced to safe
single path segments, so nothing is written outside the temporary folder.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath

from sqlalchemy import select

from datamill.core.errors import DataFormatError
from datamill.steps.generation.seeds import SeedSet, load_seeds
from datamill.store import BlobStore, Store
from datamill.store.generation_models import SeedDataset, SeedFile

_UNSAFE = re.compile(r"[^A-Za-z0-9._ -]+")


def safe_name(text: str, fallback: str) -> str:
    """One path segment made of `text`'s safe characters (never empty, ``.`` or ``..``)."""
    name = _UNSAFE.sub("_", text).strip(" .")
    return name or fallback


@contextmanager
def materialised_seeds(store: Store, blobs: BlobStore, dataset_id: str) -> Iterator[SeedSet]:
    """The dataset's seed samples, read from a temporary copy of its files (removed afterwards).

    Raises:
        DataFormatError: the dataset is gone, or its files hold no readable sample.
    """
    with store.session() as session:
        dataset = session.get(SeedDataset, dataset_id)
        if dataset is None:
            raise DataFormatError(f"seed dataset {dataset_id}", "the seed dataset was deleted")
        dataset_type = dataset.dataset_type
        query = select(SeedFile).where(SeedFile.dataset_id == dataset_id).order_by(SeedFile.position)
        files = [(f.path, f.folder, f.blob_key) for f in session.scalars(query)]
    with tempfile.TemporaryDirectory(prefix="datamill-seeds-") as tmp:
        root = Path(tmp)
        target = _lay_out(blobs, root, dataset_type, files)
        seeds = load_seeds([target])
        yield SeedSet(seeds.seeds, dataset_type)


def _lay_out(
    blobs: BlobStore, root: Path, dataset_type: str, files: list[tuple[str, str | None, str]]
) -> Path:
    """Copy the files under `root` in the dataset type's layout; returns the path `load_seeds` reads."""
    if dataset_type == "SINGLE_FILE" and len(files) == 1:
        path, _, key = files[0]
        target = root / safe_name(PurePosixPath(path).name, "seeds")
        _copy(blobs, key, target)
        return target
    base = root / "samples"
    base.mkdir()
    taken: set[str] = set()
    for position, (path, folder, key) in enumerate(files, start=1):
        parts = PurePosixPath(path).parts
        name = safe_name(parts[-1] if parts else "", f"file_{position}")
        if dataset_type == "MULTI_FOLDER":
            group = safe_name(folder or (parts[0] if len(parts) > 1 else ""), f"sample_{position}")
            relative = f"{group}/{name}"
        else:
            relative = name
        if relative in taken:  # two uploads with one name: keep both
            relative = f"{relative}.{position}"
        taken.add(relative)
        _copy(blobs, key, base / relative)
    return base


def _copy(blobs: BlobStore, key: str, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    with blobs.open_read(key) as source, target.open("wb") as sink:
        shutil.copyfileobj(source, sink, 1 << 20)
