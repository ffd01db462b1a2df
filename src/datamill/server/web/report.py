"""The evaluation report of a dataset's latest run: grades, penalties, lengths and the plots.

Drawn from the stored evaluation with the same SVG charts as the report file of the command line. A grounded
run's figures (rows grounded, citation recall and precision) are shown whether or not the grade ran.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from markupsafe import Markup

from datamill.pipelines.grounding_report import grounding_lines
from datamill.pipelines.report_categories import languages_chart, removed_chart
from datamill.pipelines.report_charts import AFTER_COLOR, BEFORE_COLOR, Series, histogram_svg, score_bins
from datamill.server.web.deps import SessionDep, WebDep

router = APIRouter()


def _scores(rows: list[Mapping[str, Any]], side: str) -> list[float]:
    scores = []
    for row in rows:
        score = (row.get(side) or {}).get("score")
        if not row.get("excluded") and isinstance(score, int | float):
            scores.append(float(score))
    return scores


def charts(raw: Mapping[str, Any]) -> list[Markup]:
    """The plots of a stored evaluation's ``raw_results``: row scores, languages, rows removed."""
    rows = [r for r in raw.get("rows") or [] if isinstance(r, Mapping)]
    bins = score_bins()
    out = [
        histogram_svg(
            "Row scores (judged sample)",
            bins,
            [
                Series("before", bins.counts(_scores(rows, "before")), BEFORE_COLOR),
                Series("after", bins.counts(_scores(rows, "after")), AFTER_COLOR),
            ],
            x_label="row score (0–10)",
        )
    ]
    before, after = (((raw.get(side) or {}).get("stats") or {}) for side in ("before", "after"))
    extra = [
        languages_chart(
            before.get("languages") or {},
            after.get("languages") or {},
            (before.get("languages_counted"), after.get("languages_counted")),
        ),
        removed_chart(raw.get("dedup") or {}, raw.get("rejections") or {}),
    ]
    out.extend(svg for svg in extra if svg is not None)
    # report_charts escapes every label it draws, so its SVG is safe to insert as markup.
    return [Markup(svg) for svg in out]


def sides(raw: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Per side: score, penalties and length statistics."""
    found = []
    for name in ("before", "after"):
        side = raw.get(name) or {}
        stats = side.get("stats") or {}
        found.append(
            {
                "name": name,
                "mean_row_score": side.get("mean_row_score"),
                "penalty_points": side.get("penalty_points"),
                "score": side.get("score"),
                "penalties": side.get("penalties") or {},
                "rows": stats.get("rows"),
                "prompt_tokens": stats.get("prompt_tokens") or {},
                "answer_tokens": stats.get("answer_tokens") or {},
            }
        )
    return found


@router.get("/datasets/{dataset_id}/report", response_class=HTMLResponse)
def report_page(request: Request, dataset_id: str, web: WebDep, session: SessionDep) -> HTMLResponse:
    view = web.context.datasets.get(session.tenant.id, dataset_id)
    evaluation = web.context.runs.evaluations.get(session.tenant.id, dataset_id)
    raw = evaluation.raw_results or {}
    return web.page(
        request,
        "report.html",
        session,
        dataset=view,
        evaluation=evaluation,
        charts=charts(raw) if evaluation.quality is not None else [],
        sides=sides(raw) if evaluation.quality is not None else [],
        sample=raw.get("sample") or {},
        judge=raw.get("judge") or {},
        judged=[r for r in raw.get("rows") or [] if isinstance(r, Mapping)][:50],
        grounding=grounding_lines(raw.get("grounding") if isinstance(raw.get("grounding"), dict) else None),
    )
