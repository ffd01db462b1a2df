"""Grounding documents at fsspec URLs (``s3://bucket/kb``, ``gs://...``, ``memory://...``): mirrored locally.

The local full-text index reads files on disk, so a ``grounding_docs`` entry that is an fsspec URL (any
scheme but ``file``) is mirrored into ``<data dir>/grounding/sources/<hash of the URL>/`` first: the files
under it (a folder is listed recursively; hidden names skipped), then indexed like a local folder. The
mirror is refreshed only when the listing changes (each file's path, size and, where the store gives one,
its modification time or ETag), so an unchanged source keeps its files, their modification times and so the
index built from them. A new copy is written beside the old one and swapped in whole. Limits:
`MAX_FILES` files and `MAX_BYTES` in all per URL (a configuration error past them). fsspec and the scheme's
package (s3fs for ``s3://``) must be installed.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Sequence
from pathlib import Path, PurePosixPath
from typing import Any

from datamill.core.errors import ConfigError

MAX_FILES = 100_000
MAX_BYTES = 4 << 30
_MANIFEST = ".datamill-manifest.json"


def is_remote(entry: str) -> bool:
    """Whether a grounding_docs entry is an fsspec URL rather than a local path."""
    scheme, sep, _ = entry.partition("://")
    return bool(sep) and scheme.lower() != "file" and scheme.isidentifier()


def local_documents(entries: Sequence[str], data_dir: Path) -> tuple[str, ...]:
    """The entries with every fsspec URL replaced by its local mirror (module docstring)."""
    return tuple(str(mirror(entry, data_dir)) if is_remote(entry) else entry for entry in entries)


def mirror(url: str, data_dir: Path) -> Path:
    """The local mirror of the documents at `url`, refreshed when the listing changed.

    Raises:
        ConfigError: fsspec or the scheme's package is missing, the URL cannot be listed, holds no file, or
            is past the limits.
    """
    fs, root, files = _listing(url)
    manifest = [[path, size, stamp] for path, (size, stamp) in sorted(files.items())]
    target = data_dir / "grounding" / "sources" / hashlib.sha256(url.encode()).hexdigest()[:24]
    name = PurePosixPath(root.rstrip("/")).name or "documents"
    folder = target / name
    if _read_manifest(target) == manifest and folder.exists():
        return folder
    fresh = target.with_name(target.name + ".new")
    shutil.rmtree(fresh, ignore_errors=True)
    try:
        for path in files:
            relative = PurePosixPath(path).relative_to(root) if path != root else PurePosixPath(name)
            local = fresh / name / relative if path != root else fresh / name
            local.parent.mkdir(parents=True, exist_ok=True)
            fs.get_file(path, str(local))
        (fresh / _MANIFEST).write_text(json.dumps(manifest), encoding="utf-8")
    except OSError as exc:
        shutil.rmtree(fresh, ignore_errors=True)
        raise ConfigError(f"grounding documents {url}: cannot be copied: {exc}") from exc
    shutil.rmtree(target, ignore_errors=True)
    fresh.rename(target)
    return folder


def _listing(url: str) -> tuple[Any, str, dict[str, tuple[int, str]]]:
    try:
        from fsspec.core import url_to_fs
    except ImportError as exc:
        raise ConfigError(
            f"grounding documents at {url} need fsspec: pip install 'datamill[server]'"
        ) from exc
    try:
        fs, root = url_to_fs(url.rstrip("/"))
        found = {root: fs.info(root)} if fs.isfile(root) else fs.find(root, detail=True)
    except (ImportError, ValueError) as exc:
        raise ConfigError(f"grounding documents at {url}: {exc}") from exc
    except OSError as exc:
        raise ConfigError(f"grounding documents at {url} cannot be listed: {exc}") from exc
    files: dict[str, tuple[int, str]] = {}
    total = 0
    for path, info in found.items():
        if info.get("type") == "directory" or any(p.startswith(".") for p in PurePosixPath(path).parts[1:]):
            continue
        size = int(info.get("size") or 0)
        total += size
        stamp = info.get("mtime") or info.get("LastModified") or info.get("ETag") or info.get("created") or ""
        files[path] = (size, str(stamp))
    if not files:
        raise ConfigError(f"grounding documents at {url}: no file found there")
    if len(files) > MAX_FILES or total > MAX_BYTES:
        raise ConfigError(
            f"grounding documents at {url}: {len(files)} files, {total} bytes; the limits are {MAX_FILES} "
            f"files and {MAX_BYTES} bytes"
        )
    return fs, root, files


def _read_manifest(target: Path) -> Any:
    try:
        return json.loads((target / _MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
