"""Chart legends in headless Chromium: no legend item overlaps another, the title or the plot.

The charts are the web app's own (the generation evaluation's requested / expected / observed bars, the
evaluation report's before / after plots), laid out with the app's stylesheet as its pages show them; the
layout is measured with the boxes the browser drew.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from web_helpers import VIEWPORT, chart_overlaps

from datamill.pipelines.report_charts import (
    AFTER_COLOR,
    BEFORE_COLOR,
    Series,
    bar_svg,
    histogram_svg,
    score_bins,
)
from datamill.server.web.gen_evals import distribution_chart

APP_CSS = Path(__file__).parents[2] / "src" / "datamill" / "server" / "web" / "static" / "app.css"

ENTRIES = [
    {
        "property_name": "Sentiment",
        "requested_distributions": {"positive": 50.0, "negative": 50.0},
        "expected_distributions": {"positive": 75.0, "negative": 25.0},
        "evaluated_distributions": {"positive": 100.0, "negative": 0.0},
    },
    {
        "property_name": "Customer intent expressed in the first message of the conversation",
        "requested_distributions": {"refund request": 40.0, "delivery status": 30.0, "praise": 30.0},
        "expected_distributions": {"refund request": 33.3, "delivery status": 33.3, "praise": 33.3},
        "evaluated_distributions": {"refund request": 66.7, "delivery status": 0.0, "praise": 33.3},
    },
]


def _page(browser: Any, charts: list[str]) -> Any:
    page = browser.new_context(viewport=VIEWPORT).new_page()
    figures = "".join(f"<figure>{svg}</figure>" for svg in charts)
    css = APP_CSS.read_text(encoding="utf-8")
    body = f'<main><div class="charts" id="charts">{figures}</div></main>'
    page.set_content(f"<html><head><style>{css}</style></head><body>{body}</body></html>")
    return page


def test_generation_evaluation_legend_stays_clear_of_the_plot_and_itself(browser: Any) -> None:
    page = _page(browser, [str(distribution_chart(entry)) for entry in ENTRIES])
    items, overlaps = chart_overlaps(page, "#charts")
    assert items == 6  # requested, expected (drawn), observed in each chart
    assert overlaps == []


def test_report_legends_stay_clear_of_the_plot_and_itself(browser: Any) -> None:
    bins = score_bins()
    before = Series("before", [3, 0, 1, 0, 0, 2, 0, 9, 0, 4], BEFORE_COLOR)
    after = Series("after", [0, 0, 0, 1, 0, 2, 0, 12, 0, 9], AFTER_COLOR)
    charts = [
        histogram_svg("Row scores (judged sample)", bins, [before, after], x_label="row score (0–10)"),
        bar_svg(
            "Languages (all rows: 120 before, 240 after)",
            ["en", "es"],
            [Series("before", [120, 0], BEFORE_COLOR), Series("after", [120, 120], AFTER_COLOR)],
        ),
    ]
    items, overlaps = chart_overlaps(_page(browser, charts), "#charts")
    assert items == 4
    assert overlaps == []
