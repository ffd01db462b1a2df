"""The end-of-run summary's quality row: grades and scores before → after, and why a side has no grade."""

from __future__ import annotations

from typing import Any

from rich.console import Console

from datamill.cli.progress import print_summary
from datamill.services.adaptation.adapt import AdaptSummary


def _printed(quality: dict[str, Any] | None, status: str | None = None) -> str:
    summary = AdaptSummary(
        input_path="support.csv",
        output_path="out/demo.jsonl",
        rejected_path=None,
        report_path="out/demo.report.html",
        model="local/smollm2-135m-instruct",
        steps=["column_mapping", "completion"],
        rows_in=10,
        rows_selected=10,
        rows_out=5,
        rows_rejected=5,
        batches_resumed=0,
        rejections_by_step={"deduplication": 1, "completion": 4},
        calls=15,
        cache_hits=0,
        input_tokens=19_000,
        output_tokens=18_778,
        thinking_tokens=0,
        cost_usd=0.0,
        elapsed_s=487.7,
        quality=quality,
        evaluation_status=status,
    )
    console = Console(record=True, width=200)
    print_summary(summary, console)
    return console.export_text()


def _quality_line(text: str) -> str:
    return next(line for line in text.splitlines() if "quality" in line)


def test_both_grades_show_with_the_improvement():
    quality = {"grade_before": "D", "grade_after": "C", "score_before": 4.0, "score_after": 6.0}
    line = _quality_line(_printed(quality | {"improvement_percent": 50.0}))
    assert "D → C (4.0 → 6.0, +50.0%)" in line


def test_a_side_without_a_grade_still_shows_the_row_and_says_why():
    quality = {"grade_before": "E", "grade_after": None, "score_before": 0.0, "score_after": None}
    line = _quality_line(_printed(quality | {"improvement_percent": None}))
    assert "E → – (0.0 → –; no grade after: no judged row was scored, the report says why)" in line


def test_an_evaluation_that_scored_no_row_says_so():
    line = _quality_line(_printed(None, "failed"))
    assert "– → – (no judged row was scored, the report says why)" in line


def test_no_quality_row_when_evaluation_is_off_or_skipped():
    assert "quality" not in _printed(None)
    assert "quality" not in _printed(None, "skipped")
