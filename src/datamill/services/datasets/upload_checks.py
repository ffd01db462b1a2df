"""Checks shared by the upload calls: the file or URL source of a new dataset, sizes, hashes and names.

Each raises a `ValidationError` naming the wire field, so every entry point words the problem the same way.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

from datamill.core.errors import Issue, ValidationError
from datamill.core.fields import join
from datamill.core.source_mapping import SourceColumnMapping, parse_source_column_mapping
from datamill.services.datasets.formats import resolve_format
from datamill.services.datasets.google_sheets import DEFAULT_BASE_URL as DEFAULT_SHEETS_URL
from datamill.services.datasets.google_sheets import is_sheets_url, sheet_export

PROCESSING_MODES = ("adapt", "raw")
#: The longest import URL accepted, in characters (presigned object URLs run to a few hundred).
MAX_URL_CHARS = 4096
_PROVIDERS = {"kaggle.com": "Kaggle", "www.kaggle.com": "Kaggle"}
_SHA256 = re.compile(r"[0-9a-f]{64}")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class FileSource:
    """A checked file source of ``POST /datasets``: what the upload will be and how to treat it."""

    name: str
    file_format: str
    processing_mode: str = "adapt"
    column_mapping: SourceColumnMapping | None = None


@dataclass(frozen=True)
class UrlSource(FileSource):
    """A checked URL source of ``POST /datasets``: the file to fetch and how to treat it."""

    url: str = ""


def check_name(name: object, field: str) -> str:
    """A non-empty name of at most 512 characters."""
    if not isinstance(name, str) or not name.strip():
        raise ValidationError.of(field, "required: a non-empty name")
    if len(name) > 512:
        raise ValidationError.of(field, "must be at most 512 characters")
    return name.strip()


def parse_file_source(source: Mapping[str, Any], field: str = "source") -> FileSource:
    """Check the ``source`` object of a file upload (no ``url``).

    Raises:
        ValidationError: A missing name, an unknown or unreadable format, an unknown processing mode, or a
            missing or malformed raw column mapping.
    """
    name = check_name(source.get("name"), join(field, "name"))
    return _with_mode(
        source, field, name, resolve_format(name, source.get("file_format"), join(field, "file_format"))
    )


def parse_url_source(
    source: Mapping[str, Any], field: str = "source", *, sheets_base_url: str = DEFAULT_SHEETS_URL
) -> UrlSource:
    """Check the ``source`` object of an import by URL: one file at an http(s) URL.

    A Hugging Face dataset URL with one entry in ``files`` imports that file (its ``resolve/main`` URL); a
    Google Sheets URL imports one tab as csv from its export on `sheets_base_url` (`google_sheets`); any
    other URL is the file itself. The name defaults to the URL's last path segment, and the format comes from
    ``file_format`` or the name's extension. Kaggle imports are not supported.

    Raises:
        ValidationError: A URL that is not http(s) or too long, a provider that is not supported, a Hugging
            Face URL without exactly one file, or what `parse_file_source` refuses.
    """
    url_field = join(field, "url")
    url = source.get("url")
    if not isinstance(url, str) or len(url) > MAX_URL_CHARS:
        raise ValidationError.of(url_field, f"must be an http(s) URL of at most {MAX_URL_CHARS} characters")
    url = url.strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValidationError.of(url_field, "must be an http or https URL of the file to import")
    provider = _PROVIDERS.get(parts.hostname.lower())
    if provider is not None:
        raise ValidationError.of(
            url_field, f"imports from {provider} are not supported: give a direct URL of the file"
        )
    if is_sheets_url(parts.hostname):
        export = sheet_export(url, source, field, sheets_base_url)
        tab = check_name(source.get("name") or export.name, join(field, "name"))
        file = _with_mode(source, field, tab, "csv")
        return UrlSource(file.name, "csv", file.processing_mode, file.column_mapping, url=export.url)
    url = _huggingface_file(
        url, parts.hostname.lower(), parts.path, source.get("files"), join(field, "files")
    )
    name = source.get("name")
    if name is None:
        name = unquote(urlsplit(url).path.rstrip("/").rsplit("/", 1)[-1]) or "import"
    name = check_name(name, join(field, "name"))
    fmt = resolve_format(name, source.get("file_format"), join(field, "file_format"))
    file = _with_mode(source, field, name, fmt)
    return UrlSource(file.name, file.file_format, file.processing_mode, file.column_mapping, url=url)


def _huggingface_file(url: str, host: str, path: str, files: Any, field: str) -> str:
    """The file URL of a Hugging Face dataset URL and its one ``files`` entry; other URLs as given."""
    segments = [s for s in path.split("/") if s]
    if host != "huggingface.co" or len(segments) != 3 or segments[0] != "datasets":
        return url
    if not isinstance(files, list) or len(files) != 1 or not isinstance(files[0], str) or not files[0]:
        raise ValidationError.of(field, "a Hugging Face dataset URL needs exactly one file path in files")
    return f"https://huggingface.co/{'/'.join(segments)}/resolve/main/{files[0].lstrip('/')}"


def _with_mode(source: Mapping[str, Any], field: str, name: str, fmt: str) -> FileSource:
    mode = source.get("processing_mode") or "adapt"
    if mode not in PROCESSING_MODES:
        raise ValidationError.of(join(field, "processing_mode"), f"must be adapt or raw, got {mode!r}")
    mapping = None
    if mode == "raw":  # the mapping is ignored in adapt mode (Adaption API); adapt takes its own mapping
        if source.get("column_mapping") is None:
            raise ValidationError.of(
                join(field, "column_mapping"), "required when processing_mode is raw: name the prompt column"
            )
        mapping = parse_source_column_mapping(source["column_mapping"], join(field, "column_mapping"))
    return FileSource(name=name, file_format=fmt, processing_mode=mode, column_mapping=mapping)


def whole_bytes(value: float | int, field: str) -> int:
    """A byte count sent as a JSON number (``56`` or ``56.0``): finite, whole and not negative."""
    if isinstance(value, bool) or not math.isfinite(value) or value != int(value) or value < 0:
        raise ValidationError.of(field, f"must be a whole number of bytes, got {value!r}")
    return int(value)


def check_sha256(value: str | None, field: str = "sha256") -> str | None:
    """A hex sha256 (any case) as lowercase, or None when not given."""
    if value is None:
        return None
    digest = value.strip().lower()
    if not _SHA256.fullmatch(digest):
        raise ValidationError.of(field, "must be the 64 hex characters of a SHA-256 digest")
    return digest


def check_received(
    size: int | None, digest: str | None, expected_size: int, expected_sha: str | None, prefix: str = ""
) -> None:
    """Compare what arrived with what the client says it sent; each mismatch names its field."""
    issues = []
    if size is not None and size != expected_size:
        issues.append(
            Issue(
                join(prefix, "file_size_bytes"),
                f"does not match the uploaded file: {expected_size} bytes declared, {size} received",
            )
        )
    if expected_sha is not None and digest is not None and digest != expected_sha:
        issues.append(Issue(join(prefix, "sha256"), "does not match the SHA-256 of the uploaded bytes"))
    if issues:
        raise ValidationError(issues)


def safe_file_name(name: str, file_format: str) -> str:
    """A file name fit for a blob key: unsafe characters replaced, ending in the format's extension."""
    stem = _UNSAFE.sub("_", name.rsplit("/", 1)[-1]).strip("._") or "data"
    suffix = f".{file_format}"
    return stem[:120] if stem.lower().endswith(suffix) else f"{stem[:120]}{suffix}"
