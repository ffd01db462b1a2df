"""Where a run keeps its data: a local directory, or a prefix on object storage (any fsspec URL).

By default a run's checkpoint and output live in ``<data_dir>/runs/<run_id>/``, which every API and worker
process must share. With ``DATAMILL_RUN_DATA_URL`` (e.g. ``s3://bucket/datamill/runs``) they live under
``<url>/<run_id>/`` instead, so workers and API processes on different machines need no shared volume: any
worker resumes a run from the bucket, and any API process serves its download. `run_location` says where;
`RunFiles` lists, reads and writes the files there, the same way for both.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import orjson

#: A run's data location: a local directory or an fsspec URL.
Location = Path | str


def run_location(data_dir: Path, run_id: str, runs_url: str | None = None) -> Location:
    """Where run `run_id` keeps its checkpoint and output."""
    if runs_url:
        return f"{runs_url.rstrip('/')}/{run_id}"
    return data_dir / "runs" / run_id


def is_remote(location: Location) -> bool:
    """Whether `location` is an fsspec URL other than a local ``file://`` one."""
    text = str(location)
    return "://" in text and not text.startswith("file://")


class RunFiles:
    """The files under one run's location; see the module docstring."""

    def __init__(self, location: Location) -> None:
        self.location = location
        self._fs: Any = None
        if is_remote(location):
            from fsspec.core import url_to_fs

            self._fs, self._root = url_to_fs(str(location))
        else:
            self._root = str(location).removeprefix("file://")

    def list(self, folder: str, suffix: str) -> list[str]:
        """The paths of the files in `folder` whose names end in `suffix`, sorted."""
        if self._fs is None:
            return sorted(str(p) for p in Path(self._root, folder).glob(f"*{suffix}"))
        self._fs.invalidate_cache()
        if not self._fs.exists(f"{self._root}/{folder}"):
            return []
        return sorted(p for p in self._fs.find(f"{self._root}/{folder}") if p.endswith(suffix))

    @contextlib.contextmanager
    def open(self, path: str) -> Iterator[IO[bytes]]:
        """One file of :meth:`list`, for reading."""
        with self._fs.open(path, "rb") if self._fs is not None else open(path, "rb") as handle:
            yield handle

    def has(self, name: str) -> bool:
        """Whether the file `name` (relative to the location) exists."""
        if self._fs is None:
            return Path(self._root, name).is_file()
        self._fs.invalidate_cache()
        return bool(self._fs.exists(f"{self._root}/{name}"))

    def read_json(self, name: str) -> dict[str, Any] | None:
        """The JSON object in the file `name`, or None when there is none."""
        if not self.has(name):
            return None
        if self._fs is None:
            data = Path(self._root, name).read_bytes()
        else:
            data = self._fs.cat_file(f"{self._root}/{name}")
        value = orjson.loads(data)
        return value if isinstance(value, dict) else None

    def write_json(self, name: str, value: Any) -> None:
        """Write `value` as the file `name`, whole or not at all."""
        data = orjson.dumps(value, default=str)
        if self._fs is not None:
            self._fs.pipe_file(f"{self._root}/{name}", data)
            return
        path = Path(self._root, name)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)
