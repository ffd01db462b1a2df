"""What the Dataframer-compatible API's parts share: the creator's email, datetimes, coded errors, files.

- `creator_email(tenant)`: the ``created_by_email`` of everything a tenant creates. A tenant has a name, not
  an email, so the value is the stable ``<name>@datamill.local`` (the name made safe for an address).
- `iso(moment)`: a datetime as ISO-8601 in UTC with a ``Z`` (a naive one, as SQLite returns them, is UTC).
- `CodedError`: a refusal with a machine-readable ``code`` (``name_taken``, ``in_use``...) that the error
  body carries; 400 unless a subclass says otherwise. Never a 409: the SDK retries 409 twice.
- `DownloadTarget`: a stored blob as a download (key, file name, content type) that the server turns into
  a signed, expiring URL of its own (the SDK's downloads answer JSON with a ``download_url``).
- `FILE_TYPES`: the MIME type of each seed or generated file extension.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import overload

from datamill.services.errors import ServiceError
from datamill.services.tenants import TenantView

EMAIL_DOMAIN = "datamill.local"

#: MIME type by lowercase extension (the Dataframer ``File.file_type`` enum, plus what runs write).
FILE_TYPES: dict[str, str] = {
    ".json": "application/json",
    ".jsonl": "application/jsonl",
    ".csv": "text/csv",
    ".md": "text/markdown",
    ".txt": "text/plain",
    ".pdf": "application/pdf",
    ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ".zip": "application/zip",
}


def creator_email(tenant: TenantView) -> str:
    """The ``created_by_email`` of what `tenant` creates: ``<name>@datamill.local``."""
    local = re.sub(r"[^A-Za-z0-9._+-]+", "-", tenant.name).strip(".-") or tenant.id
    return f"{local[:64]}@{EMAIL_DOMAIN}"


@overload
def iso(moment: dt.datetime) -> str: ...
@overload
def iso(moment: dt.datetime | None) -> str | None: ...
def iso(moment: dt.datetime | None) -> str | None:
    """`moment` as ISO-8601 in UTC ending in ``Z`` (None stays None); naive datetimes are taken as UTC."""
    if moment is None:
        return None
    aware = moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment.astimezone(dt.UTC)
    return aware.isoformat().replace("+00:00", "Z")


def file_type(name: str, default: str = "application/octet-stream") -> str:
    """The MIME type of a file name by its extension (`default` for an unknown one)."""
    return FILE_TYPES.get(PurePosixPath(name).suffix.lower(), default)


class CodedError(ServiceError):
    """A refusal with a machine-readable `code` for the error body; answered with `status` (400)."""

    status = 400

    def __init__(self, message: str, code: str, *, field: str | None = None) -> None:
        self.code = code
        self.field = field
        super().__init__(message)


class NameTakenError(CodedError):
    """A name already used by another resource of the tenant (400, code ``name_taken``)."""

    def __init__(self, kind: str, name: str) -> None:
        super().__init__(f"a {kind} named {name!r} already exists", "name_taken", field="name")


class InUseError(CodedError):
    """A resource others still reference cannot be deleted (400, code ``in_use``)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, "in_use")


@dataclass(frozen=True)
class DownloadTarget:
    """A blob to offer for download: where it is, the name to save it as, its content type."""

    blob_key: str
    filename: str
    content_type: str
