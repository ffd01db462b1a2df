"""Prompt metadata injection, and how rephrase and completion treat an injected prompt, on the fake model."""

from __future__ import annotations

from datamill.core.brand import Length
from datamill.llm.gateway import Gateway
from datamill.llm.providers.fake import FakeProvider
from datamill.llm.routing import Routing
from datamill.llm.types import ChatRequest, Route
from datamill.steps.base import StepContext
from datamill.steps.completion import GenerateCompletion
from datamill.steps.metadata_injection import (
    CONTEXT_INJECTED,
    STYLE_SUMMARY_CHARS,
    MetadataInjection,
    length_constraint,
    pending_context,
    request_text,
    style_summary,
)
from datamill.steps.rephrase import Rephrase

BLUEPRINT = "You are Acme's cheerful support agent. Use short sentences and never promise refunds."


def _row(prompt: str = "how share folder", context: str = "product: Cloud Drive\nplan: Pro") -> dict:
    return {"_row": 1, "original_prompt": prompt, "original_completion": None, "_context": context}


def _gateway(responder=None) -> tuple[Gateway, FakeProvider]:
    fake = FakeProvider(responder=responder)
    return Gateway(Routing.load(), providers={"fake": fake}), fake


async def test_injection_folds_context_and_constraints_into_the_prompt():
    step = MetadataInjection(token_range=Length.CONCISE.token_range, blueprint=BLUEPRINT)
    row = _row()
    assert await step.process_row(row, StepContext()) is None
    assert row["enhanced_prompt"] == (
        "Context:\nproduct: Cloud Drive\nplan: Pro\n\n"
        "how share folder\n\n"
        "Answer in about 30 to 112 words.\n"
        "Style: Use short sentences and never promise refunds."
    )
    assert row[CONTEXT_INJECTED] is True
    assert row["original_prompt"] == "how share folder"
    assert step.requests_for(row) == []


async def test_injection_without_context_or_constraints_keeps_the_prompt():
    row = _row(context="")
    await MetadataInjection().process_row(row, StepContext())
    assert row["enhanced_prompt"] == "how share folder"
    assert row[CONTEXT_INJECTED] is True


async def test_constraints_can_be_turned_off_separately():
    row = _row(context="")
    step = MetadataInjection(
        token_range=Length.DETAILED.token_range, blueprint=BLUEPRINT, include_length=False
    )
    await step.process_row(row, StepContext())
    assert "words" not in row["enhanced_prompt"]
    assert "Style: Use short sentences" in row["enhanced_prompt"]
    row = _row(context="")
    step = MetadataInjection(
        token_range=Length.DETAILED.token_range, blueprint=BLUEPRINT, include_style=False
    )
    await step.process_row(row, StepContext())
    assert "Style" not in row["enhanced_prompt"]
    assert "Answer in about 112 to 300 words." in row["enhanced_prompt"]


async def test_injection_builds_on_an_existing_enhanced_prompt():
    # Universal-prompt mode: one instruction for every row, the row's data in its context.
    row = {
        **_row("Summarise the review.", "review: Great phone, weak battery."),
        "enhanced_prompt": "Sum up.",
    }
    await MetadataInjection().process_row(row, StepContext())
    assert row["enhanced_prompt"] == "Context:\nreview: Great phone, weak battery.\n\nSum up."


def test_length_constraint_reads_like_a_user_instruction():
    assert length_constraint(Length.MINIMAL.token_range) == "Answer in at most 30 words."
    assert length_constraint(Length.CONCISE.token_range) == "Answer in about 30 to 112 words."
    assert length_constraint(None) == ""


def test_style_summary_leaves_out_the_persona_and_fits_the_limit():
    assert style_summary(BLUEPRINT) == "Use short sentences and never promise refunds."
    assert style_summary("You are a bot. Act as a pirate.") == ""
    assert style_summary("As an expert chef, you answer warmly. Keep it short.") == "Keep it short."
    assert style_summary("Write formally. Use British spelling.") == "Write formally. Use British spelling."
    assert style_summary(None) == ""
    assert style_summary("  ") == ""
    first = "Write formally and with care. " * 4
    assert style_summary(first + "Cite sources.").count("Write formally") == 4
    assert "Cite" not in style_summary(first + "Write formally and with care. Cite sources.")
    long = "Write " + "very " * 60 + "politely."
    summary = style_summary(long)
    assert len(summary) <= STYLE_SUMMARY_CHARS + 3
    assert summary.endswith("very...")


def test_pending_context_is_empty_once_injected():
    row = _row()
    assert pending_context(row) == "product: Cloud Drive\nplan: Pro"
    row[CONTEXT_INJECTED] = True
    assert pending_context(row) == ""
    assert request_text({"original_prompt": "a", "enhanced_prompt": ""}) == "a"
    assert request_text({"original_prompt": "a", "enhanced_prompt": "b"}) == "b"


async def test_rephrase_rewrites_the_injected_prompt_not_the_original():
    step = Rephrase(_gateway()[0].model("fake/test"))
    row = _row()
    await MetadataInjection(token_range=Length.CONCISE.token_range).process_row(row, StepContext())
    (request,) = step.requests_for(row)
    last = request.messages[-1].content
    assert last.startswith("Rewrite this request: Context:\nproduct: Cloud Drive")
    assert "Answer in about 30 to 112 words." in last
    # The context is part of the request now, so it is not repeated as a side note.
    assert "which you must not rewrite" not in last
    assert last.count("product: Cloud Drive") == 1


def test_completion_does_not_repeat_injected_context():
    step = GenerateCompletion(_gateway()[0].model("fake/test"))
    plain = _row()
    (request,) = step.requests_for(plain)
    assert request.messages[-1].content == "Context:\nproduct: Cloud Drive\nplan: Pro\n\nhow share folder"
    injected = {
        **plain,
        "enhanced_prompt": "On Cloud Drive Pro, how do I share a folder?",
        CONTEXT_INJECTED: True,
    }
    (request,) = step.requests_for(injected)
    assert request.messages[-1].content == "On Cloud Drive Pro, how do I share a folder?"


async def test_injection_rephrase_and_completion_chain_on_the_fake_model():
    def responder(route: Route, request: ChatRequest) -> str:
        last = request.messages[-1].content
        if last.startswith("Rewrite this request:"):
            return (
                "Rewritten request: On Cloud Drive Pro, how do I share a folder? Answer in 30 to 112 words."
            )
        return "Open the folder, choose Share and add your team."

    gateway, fake = _gateway(responder)
    model = gateway.model("fake/test")
    row = _row()
    ctx = StepContext()
    await MetadataInjection(token_range=Length.CONCISE.token_range).process_row(row, ctx)
    await Rephrase(model).process_row(row, ctx)
    await GenerateCompletion(model, token_range=Length.CONCISE.token_range).process_row(row, ctx)
    assert row["enhanced_prompt"] == "On Cloud Drive Pro, how do I share a folder? Answer in 30 to 112 words."
    assert row["enhanced_completion"] == "Open the folder, choose Share and add your team."
    assert fake.calls[-1].messages[-1].content == row["enhanced_prompt"]
    assert not ctx.rejected
    await gateway.aclose()
