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

PASSAGES = [
    Passage("kb/reset.md", "Open Settings, choose Security, click Forgot password.", 4.0),
    Passage(
        "kb/sso.md", "Accounts that sign in with SSO reset their password with their identity provider.", 3.0
    ),
    Passage("kb/billing.txt", "Your password is never shown on an invoice.", 1.5),
    Passage("kb/misc.md", "An unrelated page that happened to match one word.", 0.2),
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


def test_query_prefers_the_rephrased_prompt_and_adds_context_values():
    row = _row(enhanced_prompt="Rephrased question?", _context="product: Cloud Drive\ntier: Pro")
    assert query_for(row) == "Rephrased question?\nCloud Drive\nPro"
    assert query_for(_row(_context="")) == "how reset pw"
    assert query_for({"enhanced_prompt": None, "original_prompt": None}) == ""


def test_snippet_cuts_long_passages_at_a_word():
    text = "word " * 100
    cut = snippet(text)
    assert cut.endswith("word…")
    assert len(cut) <= SNIPPET_CHARS + 1
    assert snippet("  short\n text ") == "short text"


async def test_long_passages_get_a_snippet_in_the_public_column():
    long_text = "Step one: open the settings page. " * 20
    step = Ground(FakeSearch([Passage("kb/long.md", long_text, 1.0)]))
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
