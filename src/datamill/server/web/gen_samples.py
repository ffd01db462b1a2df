"""The samples of a generation run, a page at a time: each sample's text with the values drawn for it.

A run stores ``sample_<n>.txt`` (``.json`` for structured seeds) beside ``sample_<n>.metadata.json``
(``{"properties": {...}}``); samples are shown in slot order, reading only the files of the page shown.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from datamill.server.web import gen_services as services
from datamill.server.web.deps import Web
from datamill.services.generation.run_view import GeneratedFileView

_SAMPLE = re.compile(r"^sample_(\d+)\.(txt|json)$")
_META = re.compile(r"^sample_(\d+)\.metadata\.json$")
#: Characters of a sample shown on the page; the download has all of it.
SHOWN_CHARS = 4_000


@dataclass(frozen=True)
class SampleView:
    """One sample of the page."""

    slot: int
    file_id: str
    path: str
    text: str
    properties: dict[str, Any] = field(default_factory=dict)
    truncated: bool = False


def sample_files(
    files: Sequence[GeneratedFileView],
) -> list[tuple[int, GeneratedFileView, GeneratedFileView | None]]:
    """``(slot, sample file, metadata file)`` for each sample, in slot order."""
    metas = {int(m.group(1)): f for f in files if (m := _META.match(f.path))}
    found = [(int(m.group(1)), f) for f in files if (m := _SAMPLE.match(f.path))]
    return [(slot, f, metas.get(slot)) for slot, f in sorted(found, key=lambda pair: pair[0])]


def _properties(web: Web, tenant_id: str, run_id: str, meta: GeneratedFileView | None) -> dict[str, Any]:
    if meta is None:
        return {}
    target = services.runs(web).file(tenant_id, run_id, meta.id)
    try:
        doc = json.loads(services.read_text(web, target))
    except ValueError:
        return {}
    props = doc.get("properties") if isinstance(doc, dict) else None
    return dict(props) if isinstance(props, dict) else {}


def read_page(
    web: Web, tenant_id: str, run_id: str, files: Sequence[GeneratedFileView], offset: int, limit: int
) -> list[SampleView]:
    """The samples ``offset`` to ``offset + limit`` of the run's `files`."""
    out = []
    for slot, sample, meta in sample_files(files)[offset : offset + limit]:
        target = services.runs(web).file(tenant_id, run_id, sample.id)
        text = services.read_text(web, target, SHOWN_CHARS + 1)
        out.append(
            SampleView(
                slot=slot,
                file_id=sample.id,
                path=sample.path,
                text=text[:SHOWN_CHARS],
                properties=_properties(web, tenant_id, run_id, meta),
                truncated=len(text) > SHOWN_CHARS,
            )
        )
    return out
