"""The comparison page: before and after, side by side, with the changed words highlighted.

Each output row's prompt and completion as they were and as the run left them; the rows the run rejected
with the step and reason; and the grades.

Rows come from the run's checkpoint (`datamill.runners.outputs`), a page at a time; while a run is still
going this shows the batches finished so far.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from datamill.runners.outputs import output_tables
from datamill.server.web.deps import SessionDep, WebDep
from datamill.server.web.diff import highlight
from datamill.server.web.preview import cell
from datamill.services.errors import NotReadyError

router = APIRouter()

PAGE_ROWS = 25
#: The before/after column pairs shown, in order.
PAIRS = (
    ("prompt", "original_prompt", "enhanced_prompt"),
    ("completion", "original_completion", "enhanced_completion"),
)


def _rows(root: Any) -> Iterator[dict[str, Any]]:
    for table in output_tables(root):
        yield from table.to_pylist()


def _rejections(root: Any, limit: int) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for path in sorted((root / "rejected").glob("*.jsonl")) if (root / "rejected").is_dir() else ():
        for line in path.read_bytes().splitlines():
            if line.strip() and len(found) < limit:
                record = orjson.loads(line)
                row = record.get("row") or {}
                text = row.get("original_prompt") or row.get("prompt") or next(iter(row.values()), "")
                found.append(
                    {
                        "row_number": record.get("row_number"),
                        "step": record.get("step"),
                        "reason": record.get("reason"),
                        "text": cell(text, 200),
                    }
                )
    return found


@router.get("/datasets/{dataset_id}/compare", response_class=HTMLResponse)
def compare_page(
    request: Request, dataset_id: str, web: WebDep, session: SessionDep, offset: int = 0
) -> HTMLResponse:
    view = web.context.datasets.get(session.tenant.id, dataset_id)
    if view.run_id is None:
        raise NotReadyError(f"dataset {dataset_id!r} has no run yet: adapt it first")
    root = web.context.runs.settings.run_location(web.context.settings.data_dir, view.run_id)
    offset = max(0, offset)
    page = list(itertools.islice(_rows(root), offset, offset + PAGE_ROWS + 1))
    shown = []
    for row in page[:PAGE_ROWS]:
        texts = []
        for label, old, new in PAIRS:
            if old in row or new in row:
                before, after = highlight(cell(row.get(old), 4000), cell(row.get(new), 4000))
                texts.append({"label": label, "before": before, "after": after, "same": before == after})
        shown.append(texts)
    evaluation = web.context.runs.evaluations.get(session.tenant.id, dataset_id)
    return web.page(
        request,
        "compare.html",
        session,
        dataset=view,
        rows=shown,
        offset=offset,
        has_next=len(page) > PAGE_ROWS,
        page_rows=PAGE_ROWS,
        rejected=_rejections(root, 200),
        evaluation=evaluation,
    )
