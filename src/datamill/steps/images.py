"""Reading an image column's cell into an image the model can see.

A cell may hold an http(s) URL, a ``data:`` URI, a file path (absolute or relative to the input file's
folder), raw bytes, or a Hugging Face-style ``{"bytes": ..., "path": ...}`` struct. The media type comes from
the bytes' signature, else the file extension. File paths are read only where the caller allows local files
(the command line and the library); the server refuses them (`LOCAL_FILES_REFUSED`), so a dataset cannot make
the server read its own disk.

A URL is first kept as a URL (`load_image` does no I/O on the network); `fetch_image` then downloads it
through the safe URL fetcher (``datamill.text.fetch``), so a model provider is never handed an internal
address to fetch, and a URL that is refused, unreachable, too large or not an image rejects its row.
"""

from __future__ import annotations

import base64
import binascii
import mimetypes
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from datamill.llm.types import ImagePart
from datamill.steps.base import RowRejected
from datamill.text.fetch import FetchError, SafeFetcher

#: Largest image read from a file or cell, in bytes (providers cap images at a few MB).
MAX_IMAGE_BYTES = 20 * 1024 * 1024

#: Why a file-path cell is rejected where local files are not allowed (server runs).
LOCAL_FILES_REFUSED = "image cells must hold a URL, a data: URI or bytes on the server"

_SIGNATURES = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"RIFF", "image/webp"),
)


def row_images(row: Mapping[str, Any]) -> tuple[ImagePart, ...]:
    """The images the column mapping read into a row (``_images``); () for a row without any."""
    return tuple(row.get("_images") or ())


def media_type_of(data: bytes, name: str | None = None) -> str:
    """The image's media type from its first bytes, else from its name, else PNG."""
    for signature, media_type in _SIGNATURES:
        if data.startswith(signature):
            return media_type
    guessed = mimetypes.guess_type(name or "")[0]
    return guessed if guessed and guessed.startswith("image/") else "image/png"


def load_image(value: Any, base_dir: Path | None, *, local_files: bool = True) -> ImagePart | None:
    """The image in a cell, or None for an empty cell.

    Args:
        value: the cell.
        base_dir: the folder relative file paths are read from (the input file's).
        local_files: whether a file path may be read at all; False on the server.

    Raises:
        RowRejected: the cell cannot be read as an image (missing file, bad data URI, too large), or it is
            a file path and ``local_files`` is False.
    """
    if value is None or value == "" or value == b"":
        return None
    if isinstance(value, Mapping):
        data = value.get("bytes")
        path = value.get("path")
        if data:
            return _from_bytes(bytes(data), str(path) if path else None)
        return load_image(path, base_dir, local_files=local_files)
    if isinstance(value, bytes | bytearray | memoryview):
        return _from_bytes(bytes(value), None)
    text = str(value).strip()
    if text.startswith(("http://", "https://")):
        return ImagePart(url=text, media_type=mimetypes.guess_type(text)[0] or "image/png")
    if text.startswith("data:"):
        return _from_data_uri(text)
    if not local_files:
        raise RowRejected(LOCAL_FILES_REFUSED)
    return _from_file(Path(text), base_dir)


def _from_bytes(data: bytes, name: str | None) -> ImagePart:
    if len(data) > MAX_IMAGE_BYTES:
        raise RowRejected(f"image is {len(data):,} bytes; the limit is {MAX_IMAGE_BYTES:,}")
    return ImagePart(data=data, media_type=media_type_of(data, name))


def _from_data_uri(text: str) -> ImagePart:
    header, _, payload = text.partition(",")
    if ";base64" not in header:
        raise RowRejected("image data URI is not base64-encoded")
    try:
        data = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise RowRejected(f"image data URI is not valid base64: {exc}") from exc
    media_type = header[len("data:") :].split(";")[0] or media_type_of(data)
    part = _from_bytes(data, None)
    return ImagePart(data=part.data, media_type=media_type)


def _from_file(path: Path, base_dir: Path | None) -> ImagePart:
    if not path.is_absolute() and base_dir is not None:
        path = base_dir / path
    try:
        size = path.stat().st_size
        if size > MAX_IMAGE_BYTES:
            raise RowRejected(f"image file {path} is {size:,} bytes; the limit is {MAX_IMAGE_BYTES:,}")
        data = path.read_bytes()
    except OSError as exc:
        raise RowRejected(f"cannot read image file {path}: {exc.strerror or exc}") from exc
    return ImagePart(data=data, media_type=media_type_of(data, path.name))


async def fetch_image(part: ImagePart, fetcher: SafeFetcher) -> ImagePart:
    """The image at ``part.url`` downloaded as bytes; a part that already holds bytes is returned as is.

    Raises:
        RowRejected: the URL is refused by the fetch policy, fails, answers an error status, is empty, or
            answers something other than an image.
    """
    if part.data is not None or not part.url:
        return part
    try:
        result = await fetcher.fetch(part.url, max_bytes=MAX_IMAGE_BYTES)
    except FetchError as exc:
        raise RowRejected(f"image URL {exc}") from exc
    if not result.ok:
        raise RowRejected(f"image URL {part.url} answered HTTP {result.status}")
    if not result.body:
        raise RowRejected(f"image URL {part.url} answered an empty body")
    declared = result.content_type
    if declared and not declared.startswith("image/") and declared != "application/octet-stream":
        raise RowRejected(f"image URL {part.url} answered {declared}, not an image")
    media_type = declared if declared.startswith("image/") else media_type_of(result.body, part.url)
    return ImagePart(data=result.body, media_type=media_type)
