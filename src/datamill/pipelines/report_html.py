"""The evaluation report as one self-contained HTML file: inline CSS and SVG, no scripts, no network.

`render_report` lays out the grade cards, the penalty breakdown, the plots of `report_charts` (score and
length distributions before and after, languages, dedup and rejection counts), the run's plan and its
estimate against actual usage when given, and every per-row judgement with its texts. The page comes from
``templates/report.html.j2`` with autoescaping on, so text from the data is always escaped; only the SVG
that `report_charts` builds (which escapes its own labels) is inserted as markup.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from functools import cache
from typing import TYPE_CHECKING, Any

import jinja2
from markupsafe import Markup

from datamill.pipelines.evaluation_rubric import (
    CRITERIA,
    GRADE_BANDS,
    LOWEST_GRADE,
    QUALITY_CRITERIA,
    RUBRIC_VERSION,
)
from datamill.pipelines.report_categories import languages_chart, removed_chart
from datamill.pipelines.report_charts import (
    AFTER_COLOR,
    BEFORE_COLOR,
    Series,
    histogram_svg,
    length_bins,
    score_bins,
)

if TYPE_CHECKING:
    from datamill.pipelines.evaluation import EvaluationReport

#: Keys naming the estimated figure in a value of ``estimate_vs_actual`` (beside ``actual``).
ESTIMATE_KEYS = ("estimated", "estimate")


@cache
def _environment() -> jinja2.Environment:
    """The template environment, built on first use (never at import)."""
    return jinja2.Environment(
        loader=jinja2.PackageLoader("datamill.pipelines", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render_report(
    report: EvaluationReport,
    *,
    title: str = "datamill evaluation",
    plan_summary: Mapping[str, Any] | None = None,
    estimate_vs_actual: Mapping[str, Any] | None = None,
) -> str:
    """The HTML page of ``report``.

    Args:
        report: the evaluation to show.
        title: the page title and heading.
        plan_summary: the run's plan (steps, calls, tokens, credits, ...), shown as a key/value table.
        estimate_vs_actual: figure → ``{"estimated": x, "actual": y, "error": e}`` as
            `pipelines.estimate.compare` returns it (nested per-step mappings, plain notes and
            ``(estimate, actual)`` pairs are accepted too); the error is (estimate − actual) / actual,
            computed when not given.
    """
    template = _environment().get_template("report.html.j2")
    return template.render(
        title=title,
        report=report,
        quality=report.quality,
        rubric_version=RUBRIC_VERSION,
        criteria=list(CRITERIA.items()),
        levels={c.name: list(c.levels) for c in QUALITY_CRITERIA},
        confidence=None if report.confidence is None else report.confidence.to_dict(),
        adherence=report.adherence,
        pairwise=report.pairwise,
        grade_bands=[*GRADE_BANDS, (LOWEST_GRADE, 0.0)],
        penalty_rows=_penalty_rows(report),
        charts=_charts(report),
        plan_rows=_plan_rows(plan_summary),
        estimate_rows=_estimate_rows(estimate_vs_actual),
        estimate_notes=_estimate_notes(estimate_vs_actual),
        rows=[j.to_dict() for j in report.judgements],
    )


def _charts(report: EvaluationReport) -> list[Markup]:
    """The SVG plots, in page order."""
    scored = [j for j in report.judgements if j.scored]
    bins = score_bins()
    scores = [
        Series(
            "before",
            bins.counts([j.before.score for j in scored if j.before.score is not None]),
            BEFORE_COLOR,
        ),
        Series(
            "after",
            bins.counts([j.after.score for j in scored if j.after is not None and j.after.score is not None]),
            AFTER_COLOR,
        ),
    ]
    charts = [histogram_svg("Row scores (judged sample)", bins, scores, x_label="row score (0–10)")]
    before, after = report.before.stats, report.after.stats
    for label, b_values, a_values in (
        ("Prompt length", before.prompt_tokens, after.prompt_tokens),
        ("Answer length", before.answer_tokens, after.answer_tokens),
    ):
        lbins = length_bins(b_values, a_values)
        series = [
            Series("before", lbins.counts(b_values), BEFORE_COLOR),
            Series("after", lbins.counts(a_values), AFTER_COLOR),
        ]
        charts.append(histogram_svg(f"{label} (all rows)", lbins, series, x_label="approximate tokens"))
    counted = (before.language_count.to_dict(), after.language_count.to_dict())
    extra = [
        languages_chart(before.languages, after.languages, counted),
        removed_chart(report.dedup_stats, report.rejection_stats),
    ]
    charts.extend(svg for svg in extra if svg is not None)
    return [Markup(svg) for svg in charts]


def _penalty_rows(report: EvaluationReport) -> list[dict[str, Any]]:
    rows = []
    for side, result in (("before", report.before), ("after", report.after)):
        for p in result.penalties:
            rate = p.rate
            rows.append(
                {
                    "side": side,
                    "name": p.name.replace("_", " "),
                    "affected": p.affected,
                    "checked": p.checked,
                    "rate": "–" if rate is None else f"{rate:.1%}",
                    "points": f"{p.points:.2f}",
                }
            )
    return rows


def _plan_rows(plan: Mapping[str, Any] | None) -> list[tuple[str, str]]:
    if not plan:
        return []
    return [(str(key), _show(value)) for key, value in plan.items()]


def _estimate_rows(table: Mapping[str, Any] | None, prefix: str = "") -> list[tuple[str, str, str, str]]:
    """(figure, estimate, actual, error) rows; nested mappings (per-step figures) give "step: figure" rows."""
    rows: list[tuple[str, str, str, str]] = []
    for name, value in (table or {}).items():
        figure = f"{prefix}{name}"
        pair = _estimate_pair(value)
        if pair is not None:
            estimate, actual, error = pair
            rows.append((figure, _show(estimate), _show(actual), "–" if error is None else f"{error:+.1%}"))
        elif isinstance(value, Mapping):
            rows.extend(_estimate_rows(value, f"{figure}: "))
    return rows


def _estimate_notes(table: Mapping[str, Any] | None) -> list[tuple[str, str]]:
    """The plain values beside the figures (cache hits, notes), shown under the table."""
    return [
        (str(name), _show(value))
        for name, value in (table or {}).items()
        if _estimate_pair(value) is None and not isinstance(value, Mapping)
    ]


def _estimate_pair(value: Any) -> tuple[Any, Any, float | None] | None:
    """(estimate, actual, error) of one figure, or None when ``value`` is not an estimated figure.

    The error is (estimate − actual) / actual, as `pipelines.estimate.compare` reports it: positive when the
    estimate was high.
    """
    if isinstance(value, Mapping):
        keys = [k for k in ESTIMATE_KEYS if k in value]
        if not keys or "actual" not in value:
            return None
        estimate, actual = value[keys[0]], value["actual"]
        error = value.get("error", _error(estimate, actual))
    elif isinstance(value, Sequence) and not isinstance(value, str) and len(value) == 2:
        estimate, actual = value
        error = _error(estimate, actual)
    else:
        return None
    return estimate, actual, error if isinstance(error, int | float) else None


def _error(estimate: Any, actual: Any) -> float | None:
    if isinstance(estimate, int | float) and isinstance(actual, int | float) and actual:
        return (estimate - actual) / actual
    return None


def _show(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:,.4g}" if abs(value) < 1000 else f"{value:,.0f}"
    if isinstance(value, Mapping | list | tuple):
        return json.dumps(value, ensure_ascii=False, default=str)
    return str(value)
