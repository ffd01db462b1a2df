"""A folder of files at a local path or any fsspec URL (``s3://bucket/prefix``), written whole or not at all.

`Folder` is what a run's checkpoint and its other files (``request.json``, ``evaluation.json``) are kept in,
so the command line (a local directory) and a fleet of workers (a bucket) share one implementation. Every
write lands whole or not at all: on a local disk through a temporary name and a rename, on object storage by
one PUT (which object stores apply whole). Listings are read fresh each time: another process may have
written since. A plain path or a ``file://`` URL is a local folder; fsspec is imported only for other URLs.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import orjson

#: A folder's location: a local directory or an fsspec URL.
Location = Path | str


def is_remote(location: Location) -> bool:
    """Whether `location` is an fsspec URL other than a local ``file://`` one."""
    text = str(location)
    return "://" in text and not text.startswith("file://")


class Folder:
    """The files under one location; see the module docstring.

    Paths given to and returned by `list` and `open` are the folder's own (absolute) paths; other methods
    take names relative to the folder (``parts/00000001.parquet``).
    """

    def __init__(self, location: Location) -> None:
        self.location = location
        self._fs: Any = None
        if is_remote(location):
            from fsspec.core import url_to_fs

            self._fs, root = url_to_fs(str(location).rstrip("/"))
            self.root = str(root)
        else:
            self.root = str(location).removeprefix("file://")

    def list(self, folder: str, suffix: str) -> list[str]:
        """The paths of the files in the sub-folder `folder` whose names end in `suffix`, sorted by name."""
        if self._fs is None:
            return sorted(str(p) for p in Path(self.root, folder).glob(f"*{suffix}"))
        self._fs.invalidate_cache()
        if not self._fs.exists(f"{self.root}/{folder}"):
            return []
        return sorted(p for p in self._fs.find(f"{self.root}/{folder}") if p.endswith(suffix))

    @contextlib.contextmanager
    def open(self, path: str) -> Iterator[IO[bytes]]:
        """One file of `list`, for reading."""
        with self._fs.open(path, "rb") if self._fs is not None else open(path, "rb") as handle:
            yield handle

    def cat(self, path: str) -> bytes:
        """The bytes of one file of `list`."""
        return bytes(self._fs.cat_file(path)) if self._fs is not None else Path(path).read_bytes()

    def has(self, name: str) -> bool:
        """Whether the file `name` exists."""
        if self._fs is None:
            return Path(self.root, name).is_file()
        self._fs.invalidate_cache()
        return bool(self._fs.exists(f"{self.root}/{name}"))

    def read_json(self, name: str) -> dict[str, Any] | None:
        """The JSON object in the file `name`, or None when there is none."""
        if not self.has(name):
            return None
        value = orjson.loads(self.cat(f"{self.root}/{name}"))
        return value if isinstance(value, dict) else None

    def write_json(self, name: str, value: Any) -> None:
        """Write `value` as the JSON file `name`, whole or not at all."""
        self.put(name, orjson.dumps(value, default=str))

    def put(self, name: str, data: bytes) -> None:
        """Write the file `name`, whole or not at all."""
        if self._fs is not None:
            self._fs.pipe_file(f"{self.root}/{name}", data)
            return
        path = Path(self.root, name)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)

    def remove(self) -> None:
        """Delete the folder and everything in it."""
        if self._fs is None:
            shutil.rmtree(self.root, ignore_errors=True)
            return
        self._fs.invalidate_cache()
        if self._fs.exists(self.root):
            self._fs.rm(self.root, recursive=True)
