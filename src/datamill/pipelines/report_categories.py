"""The category charts of an evaluation, shared by the report file and the web app's report page.

- **Languages**: both sides' rows per language, over the one population the evaluation counted on both
  sides (`evaluation_stats.language_counts`), named with its size in the title. A stored evaluation that does
  not say which rows it counted gets no languages chart, since its two sides may not be comparable.
- **Rows removed**: each removed row once. A run's duplicate removals are rejections of its dedup steps too,
  so a step named both in the dedup counts and in the rejections is one category (``dedup: <step>``); the
  other rejections are ``rejected: <step>``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from datamill.pipelines.evaluation_stats import ALL_ROWS
from datamill.pipelines.report_charts import AFTER_COLOR, BEFORE_COLOR, SINGLE_COLOR, Series, bar_svg


def languages_chart(
    before: Mapping[str, float],
    after: Mapping[str, float],
    counted: tuple[Mapping[str, Any] | None, Mapping[str, Any] | None],
) -> str | None:
    """The languages chart, or None when nothing was counted (module doc).

    Args:
        before: rows per language before.
        after: rows per language after.
        counted: each side's ``languages_counted`` (``{"of": population, "rows": n}``, as stored).
    """
    of_before, of_after = counted
    if not of_before or not of_after or of_before.get("of") != of_after.get("of"):
        return None
    languages = list(dict.fromkeys([*before, *after]))
    if not languages:
        return None
    if of_before["of"] == ALL_ROWS:
        title = f"Languages (all rows: {of_before['rows']:,} before, {of_after['rows']:,} after)"
    else:
        title = f"Languages ({of_before['of']}: the same {of_before['rows']:,} rows before and after)"
    series = [
        Series("before", [float(before.get(k, 0)) for k in languages], BEFORE_COLOR),
        Series("after", [float(after.get(k, 0)) for k in languages], AFTER_COLOR),
    ]
    return bar_svg(title, languages, series)


def removed_rows(dedup: Mapping[str, float], rejections: Mapping[str, float]) -> dict[str, float]:
    """Rows removed per category, each removed row in one category (module doc)."""
    counts = {f"dedup: {kind}": float(n) for kind, n in dedup.items()}
    counts |= {
        f"dedup: {step}" if step in dedup else f"rejected: {step}": float(n) for step, n in rejections.items()
    }
    return counts


def removed_chart(dedup: Mapping[str, float], rejections: Mapping[str, float]) -> str | None:
    """The rows-removed chart, or None when no row was removed."""
    counts = removed_rows(dedup, rejections)
    if not counts:
        return None
    return bar_svg("Rows removed", list(counts), [Series("rows", list(counts.values()), SINGLE_COLOR)])
