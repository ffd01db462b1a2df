"""The report's category charts: languages over one population on both sides, each removed row counted once.

Both the report file (`render_report`) and the web app's report page (`server.web.report.charts`, drawn from
the stored ``raw_results``) are checked, on evaluations made by `evaluate` with the fake judge.
"""

from __future__ import annotations

import re

import orjson

from datamill.llm.gateway import Gateway
from datamill.llm.providers.fake import FakeProvider
from datamill.llm.routing import Routing
from datamill.llm.types import ChatRequest, Route
from datamill.pipelines.evaluation import EvaluationReport, evaluate
from datamill.pipelines.evaluation_rubric import CRITERIA
from datamill.pipelines.report_html import render_report
from datamill.server.web.report import charts
from datamill.text.langid import FakeLanguageDetector

TOPICS = ("rivers", "printers", "violins", "glaciers", "orchards", "dolphins", "lanterns", "kettles")


def _judge(route: Route, request: ChatRequest) -> str:
    return orjson.dumps({"rationale": "fine", "scores": dict.fromkeys(CRITERIA, 3)}).decode()


def _model():
    return Gateway(Routing.load(), providers={"fake": FakeProvider(responder=_judge)}).model("fake/test")


def _source(n: int) -> list[dict]:
    """Source rows with French answers and no language column."""
    return [
        {
            "_row": i,
            "_context": "",
            "original_prompt": f"Comment marchent les {TOPICS[i % len(TOPICS)]} ({i}) ?",
            "original_completion": f"Je pense que le sujet est pour vous et les autres {i}.",
        }
        for i in range(1, n + 1)
    ]


def _translated(source: list[dict]) -> list[dict]:
    """Each row in English plus a Spanish copy, with the language column that language expansion writes."""
    out = []
    for row in source:
        i = row["_row"]
        for language, answer in (
            ("en", f"I think the answer is that you and the others know how {i}."),
            ("es", f"Creo que el tema es para mi y los otros por {i}."),
        ):
            out.append(row | {"language": language, "enhanced_completion": answer})
    return out


def _svg(html: str, title_start: str) -> str:
    """The one chart whose title starts with ``title_start``."""
    found = [s for s in re.findall(r"<svg.*?</svg>", html, re.DOTALL) if f">{title_start}" in s]
    assert len(found) == 1, f"{len(found)} charts titled {title_start!r}"
    return found[0]


def _bars(svg: str) -> dict[str, dict[str, float]]:
    """Series → category → value, read from the bars' tooltips (``series, category: value``)."""
    bars: dict[str, dict[str, float]] = {}
    for series, category, value in re.findall(r"<title>([^,<]+), ([^<]+): ([\d.]+)</title>", svg):
        assert category not in bars.get(series, {}), f"{category} drawn twice"
        bars.setdefault(series, {})[category] = float(value)
    return bars


def _web_html(report: EvaluationReport) -> str:
    raw = orjson.loads(orjson.dumps(report.to_dict()["raw_results"]))  # as stored
    return "".join(charts(raw))


async def test_languages_compare_the_same_judged_rows_when_only_the_output_has_a_language_column():
    source = _source(10)
    report = await evaluate(
        source, _translated(source), _model(), sample_size=4, language_detector=FakeLanguageDetector()
    )
    assert report.before.stats.languages == {"fr": 4}
    assert report.after.stats.languages == {"en": 4}  # the judged copy of each row, not all 20 output rows
    counted = {"of": "judged sample", "rows": 4}
    raw = report.to_dict()["raw_results"]
    assert raw["before"]["stats"]["languages_counted"] == counted
    assert raw["after"]["stats"]["languages_counted"] == counted
    for html in (render_report(report), _web_html(report)):
        chart = _svg(html, "Languages")
        assert ">Languages (judged sample: the same 4 rows before and after)<" in chart
        assert _bars(chart) == {"before": {"fr": 4, "en": 0}, "after": {"fr": 0, "en": 4}}


async def test_languages_count_all_rows_of_both_sides_when_both_have_the_column():
    source = [row | {"language": "fr"} for row in _source(6)]
    source[0]["language"] = ""
    report = await evaluate(
        source, _translated(source), _model(), sample_size=2, language_detector=FakeLanguageDetector()
    )
    assert report.before.stats.languages == {"fr": 5, "(unknown)": 1}
    assert report.after.stats.languages == {"en": 6, "es": 6}
    for html in (render_report(report), _web_html(report)):
        chart = _svg(html, "Languages")
        assert ">Languages (all rows: 6 before, 12 after)<" in chart
        assert sum(_bars(chart)["before"].values()) == 6
        assert sum(_bars(chart)["after"].values()) == 12


async def test_no_languages_chart_without_a_column_or_a_detector():
    source = _source(4)
    report = await evaluate(source, _translated(source)[::2], _model())
    raw = report.to_dict()["raw_results"]
    assert raw["before"]["stats"]["languages_counted"] is None
    assert ">Languages" not in render_report(report)
    assert ">Languages" not in _web_html(report)


async def test_rows_removed_shows_each_removed_row_once():
    source = _source(8)
    after = [row | {"enhanced_completion": "A fine answer."} for row in source[:5]]
    # As a run reports them: the dedup steps' removals are rejections by those steps too.
    rejections = {"deduplication": 2, "safety_review": 1}
    report = await evaluate(
        source,
        after,
        _model(),
        dedup_stats={"deduplication": 2},
        rejection_stats=rejections,
    )
    for html in (render_report(report), _web_html(report)):
        chart = _svg(html, "Rows removed")
        assert _bars(chart) == {"rows": {"dedup: deduplication": 2, "rejected: safety_review": 1}}
        labels = re.findall(r">((?:dedup|rejected): [^<]+)</text>", chart)
        assert sorted(labels) == ["dedup: deduplication", "rejected: safety_review"]
