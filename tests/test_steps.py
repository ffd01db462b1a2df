"""Steps on their own: dedup, sampling, mapping, templates, rephrase and completion on the fake model."""

from __future__ import annotations

import pytest

from datamill.core.errors import EmptyReplyError
from datamill.core.mapping import parse_column_mapping
from datamill.llm.gateway import Gateway
from datamill.llm.providers.fake import FakeProvider
from datamill.llm.routing import Routing
from datamill.llm.types import ChatRequest, Route
from datamill.steps.base import StepContext
from datamill.steps.completion import DEFAULT_EXPECTED_TOKENS, GenerateCompletion, length_guidance
from datamill.steps.dedup import ExactDedup, normalize_text
from datamill.steps.mapping import MapColumns
from datamill.steps.rephrase import Rephrase, clean_rephrase
from datamill.steps.sample import SampleRows, choose_rows
from datamill.steps.templates import load_template


def _gateway(responder=None) -> tuple[Gateway, FakeProvider]:
    fake = FakeProvider(responder=responder)
    return Gateway(Routing.load(), providers={"fake": fake}), fake


def test_normalize_text_ignores_case_punctuation_and_spacing():
    assert normalize_text("  How do I reset my Password?? ") == normalize_text("how do i reset my password")
    assert normalize_text("reset password") != normalize_text("reset passwords")


def test_exact_dedup_keeps_first_and_names_it_across_batches():
    step = ExactDedup(("original_prompt",))
    ctx = StepContext()
    first = [{"_row": 1, "original_prompt": "Hello world"}, {"_row": 2, "original_prompt": "other"}]
    second = [{"_row": 3, "original_prompt": "hello, WORLD!"}]
    assert step.process_batch(first, ctx) == first
    assert step.process_batch(second, ctx) == []
    assert len(ctx.rejected) == 1
    assert ctx.rejected[0].reason == "exact duplicate of row 1"
    assert ctx.rejected[0].row["_row"] == 3


def test_exact_dedup_compares_all_key_columns():
    step = ExactDedup(("original_prompt", "original_completion"))
    rows = [
        {"_row": 1, "original_prompt": "q", "original_completion": "a"},
        {"_row": 2, "original_prompt": "q", "original_completion": "b"},
    ]
    assert len(step.process_batch(rows, StepContext())) == 2


def test_sampling_is_seeded_and_reproducible():
    a = choose_rows(100, 10, seed=7)
    assert a == choose_rows(100, 10, seed=7)
    assert a != choose_rows(100, 10, seed=8)
    assert len(a) == 10
    assert all(1 <= n <= 100 for n in a)
    rows = [{"_row": n} for n in range(1, 101)]
    kept = SampleRows(a).process_batch(rows, StepContext())
    assert {r["_row"] for r in kept} == a


def test_map_columns_renames_and_renders_context():
    mapping = parse_column_mapping({"prompt": "q", "completion": "a", "context": ["product", "tier"]})
    row = MapColumns(mapping).map_row({"q": "hi", "a": "hello", "product": "Cloud", "tier": None, "id": 5})
    assert row["original_prompt"] == "hi"
    assert row["original_completion"] == "hello"
    assert row["_context"] == "product: Cloud"
    assert row["id"] == 5
    assert "q" not in row
    assert "a" not in row


def test_map_columns_universal_prompt_applies_to_every_row():
    mapping = parse_column_mapping({"universal_prompt": "Summarise the review.", "context": ["review"]})
    row = MapColumns(mapping).map_row({"review": "great"})
    assert row["original_prompt"] == "Summarise the review."
    assert row["_context"] == "review: great"


def test_templates_render_messages_with_few_shot_turns():
    messages = load_template("rephrase").render(prompt="fix my wifi", context="")
    assert messages[0].role == "system"
    assert messages[-1].role == "user"
    assert "fix my wifi" in messages[-1].content
    assert any(m.role == "assistant" for m in messages)


def test_completion_template_uses_blueprint_as_system_prompt():
    messages = load_template("completion").render(
        prompt="p",
        context="product: X",
        passages=[],
        draft="",
        blueprint="Speak like a pirate.",
        length_guidance="",
    )
    assert messages[0].role == "system"
    assert messages[0].content.startswith("Speak like a pirate.")
    assert "product: X" in messages[1].content


def test_clean_rephrase_strips_labels_and_quotes():
    assert clean_rephrase('Rewritten request: "How do I X?"') == "How do I X?"


def test_length_guidance_names_the_range():
    assert "40 and 150 tokens" in length_guidance((40, 150))
    assert length_guidance(None) == ""


async def test_rephrase_and_completion_write_their_columns():
    def responder(route: Route, request: ChatRequest) -> str:
        last = request.messages[-1].content
        return "REPHRASED" if "Rewrite this request" in last else f"ANSWER to {last.splitlines()[-1]}"

    gateway, fake = _gateway(responder)
    model = gateway.model("fake/test")
    row = {"original_prompt": "how reset pw", "original_completion": None, "_context": ""}
    ctx = StepContext()
    await Rephrase(model).process_row(row, ctx)
    completion = GenerateCompletion(model, blueprint="Be brief.", token_range=(40, 150))
    await completion.process_row(row, ctx)
    assert row["enhanced_prompt"] == "REPHRASED"
    assert row["enhanced_completion"] == "ANSWER to REPHRASED"
    system = fake.calls[-1].messages[0]
    assert system.role == "system"
    assert "Be brief." in system.content
    assert "between 40 and 150 tokens" in system.content
    assert fake.calls[-1].max_tokens == completion.max_tokens
    await gateway.aclose()


async def test_empty_model_output_is_asked_again_then_named():
    gateway, fake = _gateway(lambda route, request: "   ")
    row = {"original_prompt": "x", "_context": ""}
    with pytest.raises(EmptyReplyError, match="empty reply"):
        await GenerateCompletion(gateway.model("fake/test")).process_row(row, StepContext())
    await gateway.aclose()
    assert len(fake.calls) == 2
    assert "enhanced_completion" not in row


def _model():
    """A model handle for tests that only render requests (nothing is sent)."""
    return _gateway()[0].model("fake/test")


def _completion_user_message(step: GenerateCompletion, row: dict) -> str:
    (request,) = step.requests_for(row)
    return request.messages[-1].content


def test_completion_cites_grounding_passages_when_present():
    step = GenerateCompletion(_model())
    row = {
        "original_prompt": "How long is the warranty?",
        "_context": "",
        "_passages": [
            {"n": 1, "source": "warranty.md", "text": "The warranty lasts two years."},
            {"n": 2, "source": "faq.html", "text": "Returns are accepted within 30 days."},
        ],
    }
    text = _completion_user_message(step, row)
    assert "[1] (warranty.md) The warranty lasts two years." in text
    assert "[2] (faq.html) Returns are accepted within 30 days." in text
    assert "cite" in text
    assert "[1], [2]" in text
    # The sources come before the request, so the request is still the last thing the model reads.
    assert text.endswith("How long is the warranty?")


def test_completion_without_passages_is_unchanged():
    step = GenerateCompletion(_model())
    plain = {"original_prompt": "How long is the warranty?", "_context": ""}
    empty = {**plain, "_passages": []}
    assert _completion_user_message(step, plain) == "How long is the warranty?"
    assert step.requests_for(empty) == step.requests_for(plain)


async def test_completion_sends_passages_to_the_model():
    gateway, fake = _gateway(lambda route, request: "It lasts two years [1].")
    row = {
        "original_prompt": "warranty?",
        "_context": "",
        "_passages": [{"n": 1, "source": "w.md", "text": "Two years."}],
    }
    step = GenerateCompletion(gateway.model("fake/test"))
    await step.process_row(row, StepContext())
    assert row["enhanced_completion"] == "It lasts two years [1]."
    assert fake.calls == step.requests_for(row)
    assert "[1] (w.md) Two years." in fake.calls[0].messages[-1].content
    await gateway.aclose()


def test_completion_asks_for_the_language_of_the_request():
    for blueprint in (None, "Speak like a pirate."):
        step = GenerateCompletion(_model(), blueprint=blueprint)
        (request,) = step.requests_for({"original_prompt": "¿Qué hora es?", "_context": ""})
        assert "language the request is written in" in request.messages[0].content


def test_completion_expected_output_tokens_is_the_middle_of_the_length_target():
    assert GenerateCompletion(_model(), token_range=(40, 150)).expected_output_tokens == 95
    assert GenerateCompletion(_model()).expected_output_tokens == DEFAULT_EXPECTED_TOKENS


def test_rephrase_requests_for_matches_what_it_sends_and_skips_empty_prompts():
    step = Rephrase(_model())
    assert step.requests_for({"original_prompt": "  ", "_context": ""}) == []
    (request,) = step.requests_for({"original_prompt": "fix wifi", "_context": "router: X1"})
    assert "fix wifi" in request.messages[-1].content
    assert "router: X1" in request.messages[-1].content
    assert request.max_tokens == step.max_tokens
    assert step.estimate_output_tokens({"original_prompt": "x" * 400}) == 100
