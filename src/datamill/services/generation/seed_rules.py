"""The rules a seed dataset's files must follow, checked before anything is stored.

- SINGLE_FILE: exactly 1 csv, json or jsonl file of at most 50 MB holding at least 2 rows.
- MULTI_FILE: 2 to 1000 files of one extension (txt, md, json, csv, jsonl, pdf or xlsx), at most 1 MB each
  and 50 MB in all.
- MULTI_FOLDER: the same files and sizes, in at least 2 folders (``folder_names[i]`` is the folder of
  ``files[i]``), at most 20 files per folder.

The row count of a single file is checked once it is stored (`datamill.services.generation.seeds`). A file's
name is its base name; one without any extension (the SDK sends bare bytes as ``upload``) gets the one its
part's content type or its first bytes say, so ``upload`` becomes ``upload.csv``. Two files that would
share a path get ``-2``, ``-3``... before the extension. Messages name the field (``files[2]``) and follow
the Dataframer API's wording where it has one.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import PurePosixPath
from typing import IO

from datamill.core.errors import ValidationError
from datamill.services.generation.common import FILE_TYPES

SINGLE_FILE, MULTI_FILE, MULTI_FOLDER = "SINGLE_FILE", "MULTI_FILE", "MULTI_FOLDER"
DATASET_TYPES = (SINGLE_FILE, MULTI_FILE, MULTI_FOLDER)
MB = 1024 * 1024
MAX_TOTAL_BYTES = 50 * MB
MAX_MULTI_FILE_BYTES = 1 * MB
MAX_FILES = 1000
MAX_PER_FOLDER = 20
MAX_NAME = 512
MIN_ROWS = 2
SINGLE_EXTENSIONS = (".csv", ".json", ".jsonl")
MULTI_EXTENSIONS = (".txt", ".md", ".json", ".csv", ".jsonl", ".pdf", ".xlsx")
_BY_MIME = {mime: ext for ext, mime in FILE_TYPES.items()} | {
    "application/x-ndjson": ".jsonl",
    "application/jsonlines": ".jsonl",
    "text/x-markdown": ".md",
}


@dataclass
class IncomingFile:
    """One uploaded file: its name as sent, its bytes (a seekable stream), its size and content type."""

    filename: str
    stream: IO[bytes]
    size: int
    content_type: str | None = None


@dataclass(frozen=True)
class PlannedFile:
    """A file that passed the rules: where it goes in the dataset and what it is."""

    incoming: IncomingFile
    name: str
    folder: str | None
    extension: str
    file_type: str

    @property
    def path(self) -> str:
        """``folder/name`` for a folder dataset, else the name."""
        return f"{self.folder}/{self.name}" if self.folder else self.name


def parse_dataset_type(value: str | None) -> str:
    """The dataset type, or a ValidationError with the API's message."""
    text = (value or "").strip().upper()
    if text not in DATASET_TYPES:
        raise ValidationError.of(
            "dataset_type", "Valid dataset_type is required (SINGLE_FILE, MULTI_FILE, or MULTI_FOLDER)"
        )
    return text


def check_name(value: str | None) -> str:
    """A dataset name: 1 to 512 characters once trimmed."""
    name = (value or "").strip()
    if not name:
        raise ValidationError.of("name", "name is required")
    if len(name) > MAX_NAME:
        raise ValidationError.of("name", f"name must be at most {MAX_NAME} characters, got {len(name)}")
    return name


def _sniff(head: bytes, dataset_type: str) -> str:
    if head.startswith(b"%PDF"):
        return ".pdf"
    if head.startswith(b"PK\x03\x04"):
        return ".xlsx"
    text = head.decode("utf-8", "replace").lstrip("\ufeff \t\r\n")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if text.startswith("["):
        return ".json"
    if text.startswith("{"):
        return ".jsonl" if len(lines) > 1 and all(line.startswith("{") for line in lines[:-1]) else ".json"
    return ".csv" if dataset_type == SINGLE_FILE else ".txt"


def _name_and_extension(file: IncomingFile, dataset_type: str) -> tuple[str, str]:
    name = PurePosixPath(file.filename.replace("\\", "/")).name.strip() or "upload"
    suffix = PurePosixPath(name).suffix.lower()
    if suffix:
        return name, suffix
    mime = (file.content_type or "").split(";")[0].strip().lower()
    extension = _BY_MIME.get(mime)
    if extension is None:
        head = file.stream.read(4096)
        file.stream.seek(0)
        extension = _sniff(head, dataset_type)
    return name + extension, extension


def _folder(value: str | None, index: int) -> str | None:
    folder = (value or "").strip().strip("/")
    if not folder:
        return None
    if "/" in folder or "\\" in folder or folder in (".", "..") or folder.startswith("."):
        raise ValidationError.of(
            f"folder_names[{index}]", f"{folder!r} is not a folder name (one level, no '/', not hidden)"
        )
    return folder


def _check_shape(dataset_type: str, files: list[IncomingFile], folder_names: list[str] | None) -> None:
    count = len(files)
    if dataset_type == SINGLE_FILE and count != 1:
        raise ValidationError.of("files", f"SINGLE_FILE dataset requires exactly 1 file, got {count}.")
    if dataset_type != SINGLE_FILE and count < 2:
        raise ValidationError.of("files", f"{dataset_type} dataset requires at least 2 files.")
    if count > MAX_FILES:
        raise ValidationError.of(
            "files", f"{dataset_type} dataset allows at most {MAX_FILES} files, got {count}."
        )
    if dataset_type != MULTI_FOLDER:
        return
    if not folder_names:
        raise ValidationError.of("folder_names", "folder_names array is required for MULTI_FOLDER dataset")
    if len(folder_names) != count:
        raise ValidationError.of(
            "folder_names",
            "Files and folder_names arrays must be same length. "
            f"Got {count} files and {len(folder_names)} folder names.",
        )


def _check_folders(planned: list[PlannedFile]) -> None:
    counts: dict[str, int] = {}
    for file in planned:
        if file.folder:
            counts[file.folder] = counts.get(file.folder, 0) + 1
    if len(counts) < 2:
        raise ValidationError.of(
            "folder_names", "MULTI_FOLDER dataset requires at least 2 different folders."
        )
    for folder, count in counts.items():
        if count > MAX_PER_FOLDER:
            raise ValidationError.of(
                "folder_names",
                f"Folder {folder!r} has {count} files; a MULTI_FOLDER dataset allows at most "
                f"{MAX_PER_FOLDER} files per folder.",
            )


def _check_file(index: int, file: PlannedFile, dataset_type: str) -> None:
    field, size = f"files[{index}]", file.incoming.size
    allowed = SINGLE_EXTENSIONS if dataset_type == SINGLE_FILE else MULTI_EXTENSIONS
    if file.extension not in allowed:
        raise ValidationError.of(
            field, f"File type {file.extension} not allowed for {dataset_type}. Allowed: {', '.join(allowed)}"
        )
    if size == 0:
        raise ValidationError.of(field, f"File {file.name} is empty.")
    limit = MAX_TOTAL_BYTES if dataset_type == SINGLE_FILE else MAX_MULTI_FILE_BYTES
    if size > limit:
        raise ValidationError.of(
            field,
            f"File {file.name} is {size} bytes; a {dataset_type} dataset allows at most "
            f"{limit // MB} MB ({limit} bytes) per file.",
        )


def _unique(planned: list[PlannedFile]) -> list[PlannedFile]:
    seen: set[str] = set()
    out: list[PlannedFile] = []
    for file in planned:
        placed, number = file, 1
        while placed.path.lower() in seen:
            number += 1
            stem = PurePosixPath(file.name)
            placed = replace(file, name=f"{stem.stem}-{number}{stem.suffix}")
        seen.add(placed.path.lower())
        out.append(placed)
    return out


def plan_files(
    dataset_type: str, files: list[IncomingFile], folder_names: list[str] | None = None
) -> list[PlannedFile]:
    """Check `files` against the rules of `dataset_type` and place them; ValidationError otherwise."""
    _check_shape(dataset_type, files, folder_names)
    planned: list[PlannedFile] = []
    for index, file in enumerate(files):
        folder = (
            _folder(folder_names[index], index) if dataset_type == MULTI_FOLDER and folder_names else None
        )
        name, extension = _name_and_extension(file, dataset_type)
        placed = PlannedFile(
            file, name, folder, extension, FILE_TYPES.get(extension, "application/octet-stream")
        )
        _check_file(index, placed, dataset_type)
        planned.append(placed)
    if dataset_type == MULTI_FOLDER:
        _check_folders(planned)
    if dataset_type == MULTI_FILE:
        extensions = sorted({file.extension for file in planned})
        if len(extensions) > 1:
            raise ValidationError.of(
                "files",
                "All files in a multi-file dataset must have the same extension. "
                f"Found: {', '.join(extensions)}",
            )
    total = sum(file.incoming.size for file in planned)
    if total > MAX_TOTAL_BYTES:
        raise ValidationError.of(
            "files", f"The files add up to {total} bytes; a dataset allows at most 50 MB ({MAX_TOTAL_BYTES})."
        )
    return _unique(planned)
