"""Google Sheets imports: a sheet's URL becomes the URL of its public CSV export, fetched like any import.

``POST /datasets`` with ``source.url`` on ``docs.google.com/spreadsheets/d/<id>/...`` imports one tab of the
sheet as a csv file:

- the tab named by ``sheet_names`` (exactly one name) or the legacy ``sheet_name`` is fetched from
  ``/spreadsheets/d/<id>/gviz/tq?tqx=out:csv&sheet=<name>``;
- else the tab of the URL's ``gid`` (``#gid=`` or ``?gid=``), or the first tab without one, from
  ``/spreadsheets/d/<id>/export?format=csv[&gid=<gid>]``.

Several names in ``sheet_names`` answer 400 naming the field (one tab per dataset: import each tab, then
``combine`` them). Only sheets shared with "Anyone with the link" can be read: this server has no Google
sign-in, so ``access: "oauth"`` answers 400 naming ``source.access``, and ``access`` left out is read as
``public``. A private sheet answers its export with Google's sign-in page, which the import refuses as an
HTML page (``E0104``, saying to share the sheet). ``file_format``, when given, must be ``csv``.

The host the export is fetched from is ``https://docs.google.com`` unless the operator (or a test) sets
``DATAMILL_GOOGLE_SHEETS_URL``; the fetch goes through the safe fetcher and its policy like every import.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

from datamill.core.errors import ValidationError
from datamill.core.fields import join

HOST = "docs.google.com"
DEFAULT_BASE_URL = "https://docs.google.com"
_SHEET_PATH = re.compile(r"^/spreadsheets/d/([A-Za-z0-9_-]{10,200})(?:/.*)?$")
_GID = re.compile(r"(?:^|[#&?])gid=(\d{1,12})")


@dataclass(frozen=True)
class SheetExport:
    """The export URL of one tab of a sheet, and the name the dataset gets by default."""

    url: str
    name: str


def is_sheets_url(host: str) -> bool:
    return host.lower() == HOST


def sheet_export(url: str, source: Mapping[str, Any], field: str, base_url: str) -> SheetExport:
    """The CSV export of the tab ``source`` asks for (module docstring).

    Raises:
        ValidationError: not a spreadsheet URL, OAuth access, several tab names, or a format other than csv.
    """
    parts = urlsplit(url)
    found = _SHEET_PATH.match(parts.path)
    if found is None:
        raise ValidationError.of(
            join(field, "url"),
            "a Google Sheets URL must be https://docs.google.com/spreadsheets/d/<sheet id>/...",
        )
    sheet_id = found.group(1)
    access = source.get("access")
    if access == "oauth":
        raise ValidationError.of(
            join(field, "access"),
            "this server has no Google sign-in: share the sheet with 'Anyone with the link' and send "
            "access='public'",
        )
    if access not in (None, "public"):
        raise ValidationError.of(join(field, "access"), f"must be public or oauth, got {access!r}")
    fmt = source.get("file_format")
    if fmt not in (None, "csv"):
        raise ValidationError.of(join(field, "file_format"), "a Google Sheet is imported as csv")
    tab = _tab_name(source, field)
    root = f"{base_url.rstrip('/')}/spreadsheets/d/{sheet_id}"
    if tab is not None:
        return SheetExport(f"{root}/gviz/tq?tqx=out:csv&sheet={quote(tab, safe='')}", f"{tab}.csv")
    gid = _gid(parts.fragment) or _gid(parts.query) or _query_gid(parts.query)
    if gid is not None:
        return SheetExport(f"{root}/export?format=csv&gid={gid}", f"sheet-{sheet_id[:12]}-{gid}.csv")
    return SheetExport(f"{root}/export?format=csv", f"sheet-{sheet_id[:12]}.csv")


def _tab_name(source: Mapping[str, Any], field: str) -> str | None:
    if "sheet_names" in source and source["sheet_names"] is not None:
        names = source["sheet_names"]
        if not isinstance(names, list) or not all(isinstance(n, str) and n.strip() for n in names):
            raise ValidationError.of(join(field, "sheet_names"), "must be a list of tab names")
        if len(names) > 1:
            raise ValidationError.of(
                join(field, "sheet_names"),
                "one tab per dataset: import each tab with its own call, then combine the datasets",
            )
        return names[0].strip() if names else None
    name = source.get("sheet_name")
    if name is None:
        return None
    if not isinstance(name, str) or not name.strip():
        raise ValidationError.of(join(field, "sheet_name"), "must be a tab name")
    return name.strip()


def _gid(text: str) -> str | None:
    found = _GID.search(text)
    return found.group(1) if found else None


def _query_gid(query: str) -> str | None:
    values = parse_qs(query).get("gid")
    return values[0] if values and values[0].isdigit() else None
