"""The grounding step: which passages a row gets, the columns it fills, and rows that find nothing."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from datamill.core.errors import ConfigError
from datamill.steps.base import StepContext
from datamill.steps.grounding import (
    DEFAULT_TOP_K,
    GROUNDING_SOURCES_TYPE,
    SNIPPET_CHARS,
    Ground,
    query_for,
    snippet,
)
from datamill.text.fulltext import LocalFullTextIndex
from datamill.text.search import FakeSearch, Passage

#: Scripted search results, with the share of the query each covers as the backend reports it.
PASSAGES = [
    Passage("kb/reset.md", "Open Settings, choose Security, click Forgot password.", 4.0, 0.9),
    Passage(
        "kb/sso.md",
        "Accounts that sign in with SSO reset their password with their identity provider.",
        3.0,
        0.8,
    ),
    Passage("kb/billing.txt", "Your password is never shown on an invoice.", 1.5, 0.5),
    Passage("kb/misc.md", "An unrelated page that happened to match one word.", 0.2, 0.3),
]


def _row(**extra: object) -> dict[str, object]:
    return {"original_prompt": "how reset pw", "original_completion": None, "_context": "", **extra}


async def test_ground_fills_passages_sources_and_flag():
    search = FakeSearch(PASSAGES)
    step = Ground(search)
    row = _row(enhanced_prompt="How do I reset my password?")
    assert await step.process_row(row, StepContext()) is None
    assert DEFAULT_TOP_K == 3
    assert row["_passages"] == [
        {"n": 1, "source": "kb/reset.md", "text": PASSAGES[0].text},
        {"n": 2, "source": "kb/sso.md", "text": PASSAGES[1].text},
        {"n": 3, "source": "kb/billing.txt", "text": PASSAGES[2].text},
    ]
    assert row["grounding_sources"] == [
        {"n": 1, "source": "kb/reset.md", "snippet": PASSAGES[0].text},
        {"n": 2, "source": "kb/sso.md", "snippet": PASSAGES[1].text},
        {"n": 3, "source": "kb/billing.txt", "snippet": PASSAGES[2].text},
    ]
    assert row["grounded"] is True
    assert search.queries == ["How do I reset my password?"]
    assert (step.counts.grounded, step.counts.ungrounded) == (1, 0)


async def test_top_k_and_min_score_bound_what_is_kept():
    step = Ground(FakeSearch(PASSAGES), top_k=5, min_score=1.0)
    row = _row()
    await step.process_row(row, StepContext())
    assert [p["source"] for p in row["_passages"]] == ["kb/reset.md", "kb/sso.md", "kb/billing.txt"]
    one = Ground(FakeSearch(PASSAGES), top_k=1)
    row = _row()
    await one.process_row(row, StepContext())
    assert [p["n"] for p in row["grounding_sources"]] == [1]


async def test_a_row_that_finds_nothing_is_completed_ungrounded():
    step = Ground(FakeSearch(PASSAGES), min_score=10.0)
    row = _row()
    await step.process_row(row, StepContext())
    assert row["_passages"] == []
    assert row["grounding_sources"] == []
    assert row["grounded"] is False
    nothing = Ground(FakeSearch([]))
    await nothing.process_row(_row(), StepContext())
    assert (step.counts.ungrounded, nothing.counts.ungrounded, nothing.counts.grounded) == (1, 1, 0)


async def test_repeated_passages_count_once():
    copy = Passage("kb/copy-of-reset.md", "Open Settings,  choose Security,\nclick Forgot password.", 3.9)
    step = Ground(FakeSearch([*PASSAGES, copy]))
    row = _row()
    await step.process_row(row, StepContext())
    assert [p["source"] for p in row["_passages"]] == ["kb/reset.md", "kb/sso.md", "kb/billing.txt"]


async def test_an_empty_prompt_searches_nothing():
    search = FakeSearch(PASSAGES)
    step = Ground(search)
    row = {"original_prompt": "", "_context": None}
    await step.process_row(row, StepContext())
    assert search.queries == []
    assert row["grounded"] is False


def test_query_is_the_rephrased_request_and_the_context_values():
    row = _row(enhanced_prompt="Rephrased question?", _context="product: Cloud Drive\ntier: Pro")
    assert query_for(row) == "Rephrased question?\nCloud Drive\nPro"
    assert query_for(_row(_context="")) == "how reset pw"
    assert query_for({"enhanced_prompt": None, "original_prompt": None}) == ""


def test_after_metadata_injection_the_query_leaves_the_runs_constraints_out():
    injected = "Context:\nproduct: Cloud\n\nhow reset pw\n\nAnswer in about 30 to 112 words.\nStyle: Brief."
    row = _row(enhanced_prompt=injected, _context="product: Cloud", _context_injected=True)
    assert query_for(row) == "how reset pw\nCloud"


def test_snippet_cuts_long_passages_at_a_word():
    text = "word " * 100
    cut = snippet(text)
    assert cut.endswith("word…")
    assert len(cut) <= SNIPPET_CHARS + 1
    assert snippet("  short\n text ") == "short text"


async def test_long_passages_get_a_snippet_in_the_public_column():
    long_text = "Step one: open the settings page. " * 20
    step = Ground(FakeSearch([Passage("kb/long.md", long_text, 1.0, 1.0)]))
    row = _row()
    await step.process_row(row, StepContext())
    assert row["_passages"][0]["text"] == long_text
    assert row["grounding_sources"][0]["snippet"] == snippet(long_text)
    assert len(row["grounding_sources"][0]["snippet"]) < len(long_text)


def test_ground_makes_no_model_requests_and_declares_its_columns():
    step = Ground(FakeSearch(PASSAGES))
    assert step.requests_for(_row()) == []
    assert step.name == "grounding"
    assert set(step.output_columns) == {"_passages", "grounding_sources", "grounded"}
    with pytest.raises(ConfigError, match="top_k"):
        Ground(FakeSearch(), top_k=0)


async def test_sources_column_fits_its_arrow_type_grounded_or_not():
    step = Ground(FakeSearch(PASSAGES))
    grounded, ungrounded = _row(), _row()
    await step.process_row(grounded, StepContext())
    await Ground(FakeSearch([])).process_row(ungrounded, StepContext())
    column = pa.array(
        [ungrounded["grounding_sources"], grounded["grounding_sources"]], GROUNDING_SOURCES_TYPE
    )
    assert column.to_pylist() == [[], grounded["grounding_sources"]]


async def test_ground_on_the_local_index_cites_the_relevant_document(tmp_path: Path):
    docs = tmp_path / "kb"
    docs.mkdir()
    (docs / "reset.md").write_text(
        "# Resetting your password\n\nOpen Settings, choose Security, then click Forgot password.\n"
    )
    (docs / "shipping.md").write_text("We ship to 40 countries. Express shipping takes two days.\n")
    (docs / "refunds.txt").write_text("Refunds reach your card within ten business days.\n")
    index = LocalFullTextIndex.build(docs, tmp_path / "kb.sqlite")
    try:
        step = Ground(index)
        row = _row(enhanced_prompt='How do I reset my "password"?', _context="product: Cloud (Pro)")
        await step.process_row(row, StepContext())
        off_topic = _row(original_prompt="Write a haiku about autumn leaves.")
        await step.process_row(off_topic, StepContext())
    finally:
        index.close()
    assert row["grounded"] is True
    assert [s["source"] for s in row["grounding_sources"]] == ["kb/reset.md"]
    assert "Forgot password" in row["_passages"][0]["text"]
    assert off_topic["grounded"] is False
    assert (step.counts.grounded, step.counts.ungrounded) == (1, 1)


def _support_kb(tmp_path: Path) -> Path:
    """A small knowledge base in which "plan" is on almost every page, as a product's plan names are."""
    docs = tmp_path / "kb"
    docs.mkdir()
    (docs / "reset.md").write_text(
        "To reset your Cloud Drive password, open Settings, then Security, then Reset password. The email "
        "with the link is valid for 24 hours on every plan."
    )
    (docs / "refunds.md").write_text(
        "Annual plans can be refunded within 30 days of purchase. Monthly plans are not refunded, but you "
        "can cancel at any time."
    )
    (docs / "sharing.md").write_text(
        "On the Pro plan you can share a folder with your team: right-click the folder, choose Share. You "
        "can work from home or the office."
    )
    (docs / "storage.md").write_text(
        "The Free plan includes 5 GB of storage, the Pro plan 2 TB. Deleted files stay in the trash."
    )
    return docs


@pytest.mark.parametrize(
    "question",
    [
        "How do I plan a wedding on a budget?",
        "What is a good bread recipe to bake at home?",
        "How do I reset the oil light in my car?",
    ],
)
async def test_an_unrelated_question_gets_no_passage_through_one_shared_word(tmp_path: Path, question: str):
    index = LocalFullTextIndex.build(_support_kb(tmp_path), tmp_path / "kb.sqlite")
    try:
        # The index does find something: the question shares one word with a page ...
        assert index.search_sync(question, 6)
        row = _row(original_prompt=question)
        await Ground(index).process_row(row, StepContext())
    finally:
        index.close()
    # ... but a passage that covers so little of the question is no source for its answer.
    assert row["grounded"] is False
    assert row["_passages"] == []


@pytest.mark.parametrize(
    ("question", "source"),
    [
        ("How do I reset my password?", "kb/reset.md"),
        ("Can I get a refund on my monthly plan?", "kb/refunds.md"),
        ("How do I share a folder with my team?", "kb/sharing.md"),
        ("How long do deleted files stay in the trash?", "kb/storage.md"),
    ],
)
async def test_a_question_the_documents_answer_is_grounded_in_them(
    tmp_path: Path, question: str, source: str
):
    index = LocalFullTextIndex.build(_support_kb(tmp_path), tmp_path / "kb.sqlite")
    try:
        (best, *_) = index.search_sync(question, 6)
        row = _row(original_prompt=question)
        await Ground(index).process_row(row, StepContext())
    finally:
        index.close()
    assert best.relevance is not None
    assert 0.0 < best.relevance <= 1.0
    assert row["grounding_sources"][0]["source"] == source


async def test_passages_without_a_relevance_are_measured_by_the_query_words_they_hold():
    # A search API that reports no relevance: the floor applies to the share of the query's words.
    unmeasured = [Passage(p.source, p.text, p.score) for p in PASSAGES]
    row = _row(enhanced_prompt="How do I reset my password?")  # searched for: "reset", "password"
    await Ground(FakeSearch(unmeasured), top_k=5).process_row(row, StepContext())
    assert [p["source"] for p in row["_passages"]] == ["kb/reset.md", "kb/sso.md", "kb/billing.txt"]
    row = _row(enhanced_prompt="How do I reset my password?")
    await Ground(FakeSearch(unmeasured), top_k=5, min_relevance=0.99).process_row(row, StepContext())
    assert [p["source"] for p in row["_passages"]] == ["kb/sso.md"]  # the one page with both words
    covered = [Passage("kb/a.md", "Open Settings.", 2.0, 0.5), Passage("kb/b.md", "Other.", 3.0, 0.1)]
    row = _row()
    await Ground(FakeSearch(covered), min_relevance=0.3).process_row(row, StepContext())
    assert [p["source"] for p in row["_passages"]] == ["kb/a.md"]


def test_with_grounding_the_completion_is_not_shown_the_ungrounded_answer_as_a_draft():
    from datamill.core.adapt_request import parse_adapt_request
    from datamill.core.run_options import RunOptions
    from datamill.llm.gateway import Gateway
    from datamill.llm.routing import Routing
    from datamill.pipelines.plan import PlanServices, plan_adaptation
    from datamill.steps.completion import GenerateCompletion

    gateway = Gateway(Routing.load())
    model = gateway.model("fake/test")
    row = _row(original_prompt="How do I reset my password?", original_completion="Call Bob at 555-0100.")
    for mitigation, shown in ((False, True), (True, False)):
        request = parse_adapt_request(
            {
                "column_mapping": {"prompt": "q", "completion": "a"},
                "recipe_specification": {"recipes": {"prompt_rephrase": False}},
                "brand_controls": {"hallucination_mitigation": mitigation},
            }
        )
        services = PlanServices(search=FakeSearch(PASSAGES))
        plan = plan_adaptation(request, model, total_rows=1, options=RunOptions(), services=services)
        (completion,) = [s for s in plan.row_steps if isinstance(s, GenerateCompletion)]
        (sent,) = completion.requests_for(row)
        assert ("Call Bob at 555-0100." in sent.messages[-1].content) is shown
