"""The HTML evaluation report: grades, plots, escaping, structure, and the optional plan and estimate."""

from __future__ import annotations

from html.parser import HTMLParser

import orjson

from datamill.llm.gateway import Gateway
from datamill.llm.providers.fake import FakeProvider
from datamill.llm.routing import Routing
from datamill.llm.types import ChatRequest, Route
from datamill.pipelines.evaluation import EvaluationReport, evaluate
from datamill.pipelines.evaluation_rubric import CRITERIA
from datamill.pipelines.report_charts import length_bins, nice_step, score_bins
from datamill.pipelines.report_html import render_report

_VOID = {"meta", "br", "hr", "img", "input", "link"}
_EVIL = "<script>alert('x')</script>"


class _Structure(HTMLParser):
    """Collects start tags and checks that every element is closed in order."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        if tag not in _VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):
        self.tags.append(tag)

    def handle_endtag(self, tag):
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"unexpected </{tag}> with open {self.stack[-3:]}")
            return
        self.stack.pop()

    def handle_data(self, data):
        self.text.append(data)


def _parse(html: str) -> _Structure:
    parser = _Structure()
    parser.feed(html)
    parser.close()
    return parser


def _responder(route: Route, request: ChatRequest) -> str:
    good = "GOOD" in request.messages[-1].content
    value = 5 if good else 1
    return orjson.dumps(
        {"rationale": f"rated {value} {_EVIL}", "scores": dict.fromkeys(CRITERIA, value)}
    ).decode()


TOPICS = ("rivers", "printers", "violins", "glaciers", "tax returns", "orchards", "dolphins", "lanterns")


async def _report() -> EvaluationReport:
    fake = FakeProvider(responder=_responder)
    model = Gateway(Routing.load(), providers={"fake": fake}).model("fake/test")
    before, after = [], []
    for i in range(1, 9):
        row = {
            "_row": i,
            "original_prompt": f"Question 1 {_EVIL}?" if i == 1 else f"Tell me how {TOPICS[i - 1]} work.",
            "original_completion": f"An answer {i}.",
        }
        row |= {"_context": "", "language": "en" if i % 2 else f"fr{_EVIL}"}
        before.append(row)
        public = {k: v for k, v in row.items() if not k.startswith("_")}
        after.append(
            public
            | {
                "enhanced_prompt": f"How do {TOPICS[i - 1]} work?",
                "enhanced_completion": f"A GOOD answer {i}.",
            }
        )
    return await evaluate(
        before,
        after,
        model,
        dedup_stats={"exact": 2, "near": 1},
        rejection_stats={"safety_review": 1, _EVIL: 1},
    )


async def test_report_shows_grades_plots_and_escapes_row_text():
    report = await _report()
    assert (report.quality.grade_before, report.quality.grade_after) == ("E", "A")
    html = render_report(
        report,
        title="Support data <v2>",
        plan_summary={"steps": ["deduplication", "completion"], "rows": 8},
        estimate_vs_actual={
            "input_tokens": {"estimated": 1100, "actual": 1000, "error": 0.1},
            "cost_usd": (0.4, 0.5),
            "steps": {"completion": {"calls": {"estimated": 8, "actual": 8, "error": 0.0}}},
            "cache_hits": 3,
        },
    )
    parsed = _parse(html)
    assert parsed.errors == []
    assert parsed.stack == []
    assert "script" not in parsed.tags
    assert "<script" not in html
    assert "&lt;script&gt;" in html
    assert parsed.tags.count("svg") == 5  # scores, prompt and answer lengths, languages, removals
    text = "".join(parsed.text)
    assert "Support data <v2>" in text
    assert f"Question 1 {_EVIL}?" in text  # the row text survives, as text
    assert f"rated 1 {_EVIL}" in text
    assert "95% interval" in text
    assert "Target adherence (not in the grade)" in text
    assert "After against before (pairwise, not in the grade)" in text
    assert "the model that generated the data" not in text  # no judge choice was given
    assert '<div class="grade">E</div>' in html
    assert '<div class="grade">A</div>' in html
    assert "+10.0%" in html  # the error as given: (1100 - 1000) / 1000
    assert "-20.0%" in html  # computed for a pair: (0.4 - 0.5) / 0.5
    assert "completion: calls" in text
    assert "cache_hits: 3" in text
    assert "deduplication" in text
    assert f"rejected: {_EVIL}" in text


async def test_report_is_self_contained():
    html = render_report(await _report())
    parsed = _parse(html)
    assert not {"link", "img", "iframe", "object"} & set(parsed.tags)
    assert "src=" not in html
    assert "href=" not in html
    assert html.replace("http://www.w3.org/2000/svg", "").count("http") == 0


async def test_optional_sections_are_left_out_when_not_given():
    html = render_report(await _report())
    assert "Estimate vs actual" not in html
    assert "<h2>Plan</h2>" not in html


def test_bins_are_shared_and_count_every_value():
    bins = score_bins()
    assert bins.counts([0.0, 0.99, 5.0, 9.5, 10.0]) == [2, 0, 0, 0, 0, 1, 0, 0, 0, 2]
    lengths = length_bins([5, 40, 95], [10, 2000])
    assert len(lengths.labels) == 10
    assert sum(lengths.counts([5, 40, 95, 10, 2000])) == 5
    assert lengths.labels[-1].startswith("≥")
    assert [nice_step(x) for x in (0.3, 7, 13, 45, 180)] == [1, 10, 20, 50, 200]
