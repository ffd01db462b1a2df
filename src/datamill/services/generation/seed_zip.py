"""Reading a seed ZIP safely: which members become files, their folders, and the dataset type they make.

Refused with a 400 before anything is stored:

- not a ZIP ("Uploaded file is not a valid ZIP file"), an encrypted member, an unsupported compression;
- a member name that is absolute, has a drive letter or a backslash, or contains ``..`` ("Invalid ZIP file:
  contains unsafe paths"); a symbolic link (told by the Unix mode in ``external_attr``);
- more than `MAX_MEMBERS` entries, or more than 1000 usable files;
- members that declare more than 50 MB in all, or a member compressed more than `MAX_RATIO` to 1 (beyond the
  first MB): a zip bomb is refused from its directory, without being inflated. The bytes are also counted
  while they are read, so a member that lies about its size cannot go past the limit either.

Skipped: directories, hidden files (a name starting with ``.``), anything under ``__MACOSX``, extensions
other than `MEMBER_EXTENSIONS`. A file's folder is its top-level directory; the archive's order is kept.
Two or more folders make MULTI_FOLDER, exactly one file SINGLE_FILE (csv, json or jsonl only), anything else
MULTI_FILE. Members are read into spooled temporary files (memory up to 1 MB each, then disk).
"""

from __future__ import annotations

import stat
import tempfile
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import BinaryIO

from datamill.core.errors import ValidationError
from datamill.services.generation.seed_rules import (
    MAX_FILES,
    MAX_TOTAL_BYTES,
    MB,
    MULTI_EXTENSIONS,
    MULTI_FILE,
    MULTI_FOLDER,
    SINGLE_EXTENSIONS,
    SINGLE_FILE,
    IncomingFile,
)

MAX_MEMBERS = 5000
MAX_RATIO = 100
MEMBER_EXTENSIONS = MULTI_EXTENSIONS
_FIELD = "zip_file"
_CHUNK = 256 * 1024


@dataclass
class ZipContents:
    """The usable files of an archive, their folders ("" at the top level) and the dataset type."""

    dataset_type: str
    files: list[IncomingFile]
    folder_names: list[str] = field(default_factory=list)

    def close(self) -> None:
        """Drop the temporary copies of the members."""
        for file in self.files:
            file.stream.close()


def _invalid(reason: str) -> ValidationError:
    return ValidationError.of(_FIELD, reason)


def _unsafe(name: str) -> bool:
    return name.startswith("/") or ".." in name or "\\" in name or (len(name) > 1 and name[1] == ":")


def _is_symlink(info: zipfile.ZipInfo) -> bool:
    return stat.S_ISLNK(info.external_attr >> 16)


def _usable(info: zipfile.ZipInfo) -> bool:
    parts = PurePosixPath(info.filename).parts
    if info.is_dir() or not parts or parts[-1].startswith(".") or "__MACOSX" in parts:
        return False
    return PurePosixPath(parts[-1]).suffix.lower() in MEMBER_EXTENSIONS


def _check_directory(archive: zipfile.ZipFile) -> list[zipfile.ZipInfo]:
    infos = archive.infolist()
    if len(infos) > MAX_MEMBERS:
        raise _invalid(f"Invalid ZIP file: {len(infos)} entries; at most {MAX_MEMBERS} are read")
    for info in infos:
        if _unsafe(info.filename):
            raise _invalid("Invalid ZIP file: contains unsafe paths")
        if _is_symlink(info):
            raise _invalid(f"Invalid ZIP file: {info.filename!r} is a symbolic link")
    usable = [info for info in infos if _usable(info)]
    if len(usable) > MAX_FILES:
        raise _invalid(f"ZIP holds {len(usable)} usable files; a dataset allows at most {MAX_FILES}")
    declared = sum(info.file_size for info in usable)
    if declared > MAX_TOTAL_BYTES:
        raise _invalid(
            f"ZIP contents add up to {declared} bytes uncompressed; a dataset allows at most 50 MB "
            f"({MAX_TOTAL_BYTES})"
        )
    for info in usable:
        if info.file_size > MB and info.file_size > MAX_RATIO * max(info.compress_size, 1):
            raise _invalid(
                f"ZIP member {info.filename!r} is compressed more than {MAX_RATIO}:1; "
                "refusing what looks like a zip bomb"
            )
    return usable


def _extract(archive: zipfile.ZipFile, info: zipfile.ZipInfo, budget: int) -> IncomingFile:
    """Copy one member to a spooled file, counting the bytes against `budget` as they come."""
    spool = tempfile.SpooledTemporaryFile(max_size=MB)  # noqa: SIM115 - closed by ZipContents
    size = 0
    try:
        with archive.open(info) as member:
            while chunk := member.read(_CHUNK):
                size += len(chunk)
                if size > budget or size > info.file_size:
                    raise _invalid(
                        f"ZIP member {info.filename!r} inflates past its declared size or the limit"
                    )
                spool.write(chunk)
    except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
        spool.close()
        raise _invalid(f"Uploaded file is not a valid ZIP file ({info.filename!r}: {exc})") from exc
    except RuntimeError as exc:  # encrypted member
        spool.close()
        raise _invalid(f"ZIP member {info.filename!r} cannot be read: {exc}") from exc
    except NotImplementedError as exc:  # compression method zipfile does not know
        spool.close()
        raise _invalid(f"ZIP member {info.filename!r} uses an unsupported compression: {exc}") from exc
    except ValidationError:
        spool.close()
        raise
    spool.seek(0)
    return IncomingFile(PurePosixPath(info.filename).name, spool, size)


def _classify(files: list[IncomingFile], folders: list[str]) -> str:
    if len({folder for folder in folders if folder}) >= 2:
        return MULTI_FOLDER
    if len(files) == 1:
        extension = PurePosixPath(files[0].filename).suffix.lower()
        if extension not in SINGLE_EXTENSIONS:
            raise _invalid(f"SINGLE_FILE dataset only supports CSV, JSON, JSONL. Found: {extension}")
        return SINGLE_FILE
    return MULTI_FILE


def read_zip(stream: BinaryIO) -> ZipContents:
    """The files of the archive in `stream` (seekable); ValidationError naming ``zip_file`` otherwise."""
    try:
        archive = zipfile.ZipFile(stream)
    except (zipfile.BadZipFile, zlib.error, EOFError, ValueError, OSError):
        raise _invalid("Uploaded file is not a valid ZIP file") from None
    contents = ZipContents(MULTI_FILE, [])
    with archive:
        usable = _check_directory(archive)
        if not usable:
            raise _invalid(
                f"No valid files found in ZIP. Supported extensions: {', '.join(MEMBER_EXTENSIONS)}"
            )
        budget = MAX_TOTAL_BYTES
        try:
            for info in usable:
                file = _extract(archive, info, budget)
                budget -= file.size
                contents.files.append(file)
                parts = PurePosixPath(info.filename).parts
                contents.folder_names.append(parts[0] if len(parts) > 1 else "")
            contents.dataset_type = _classify(contents.files, contents.folder_names)
        except BaseException:
            contents.close()
            raise
    return contents
