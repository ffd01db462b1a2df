"""Reasoning traces on the fake model: the column, what the model is shown, and the empty-trace rejection."""

from __future__ import annotations

import pytest

from datamill.core.errors import EmptyReplyError
from datamill.llm.gateway import Gateway
from datamill.llm.providers.fake import FakeProvider
from datamill.llm.routing import Routing
from datamill.steps.base import RowRejected, StepContext
from datamill.steps.metadata_injection import CONTEXT_INJECTED
from datamill.steps.reasoning import ReasoningTraces, clean_trace

TRACE = (
    "1. The request asks how to share a folder.\n2. Sharing is in the folder menu.\n3. So: open it, Share."
)


def _gateway(responder=None) -> tuple[Gateway, FakeProvider]:
    fake = FakeProvider(responder=responder)
    return Gateway(Routing.load(), providers={"fake": fake}), fake


def _row(**extra) -> dict:
    row = {
        "_row": 1,
        "original_prompt": "how share folder",
        "enhanced_prompt": "How do I share a folder with my team?",
        "enhanced_completion": "Open the folder, choose Share and add your team.",
        "_context": "product: Cloud Drive",
    }
    row.update(extra)
    return row


async def test_reasoning_column_comes_from_prompt_and_completion():
    gateway, fake = _gateway(lambda route, request: "Reasoning: " + TRACE)
    step = ReasoningTraces(gateway.model("fake/test"))
    row = _row()
    await step.process_row(row, StepContext())
    assert row["reasoning"] == TRACE
    assert fake.calls == step.requests_for(row)
    user = fake.calls[0].messages[-1].content
    assert "How do I share a folder with my team?" in user
    assert "Final answer:\nOpen the folder, choose Share and add your team." in user
    assert "product: Cloud Drive" in user
    assert fake.calls[0].max_tokens == step.max_tokens
    await gateway.aclose()


def test_reasoning_prompt_skips_injected_context_and_has_a_worked_example():
    gateway, _ = _gateway()
    step = ReasoningTraces(gateway.model("fake/test"))
    (request,) = step.requests_for(_row(**{CONTEXT_INJECTED: True}))
    assert "product: Cloud Drive" not in request.messages[-1].content
    roles = [m.role for m in request.messages]
    assert roles == ["system", "user", "assistant", "user"]
    assert "do not mention that you were shown the answer" in request.messages[0].content


def test_reasoning_estimate_falls_back_to_the_original_completion():
    gateway, _ = _gateway()
    step = ReasoningTraces(gateway.model("fake/test"))
    row = {"original_prompt": "q?", "original_completion": "old answer", "_context": ""}
    (request,) = step.requests_for(row)
    assert "Final answer:\nold answer" in request.messages[-1].content
    assert step.expected_output_tokens > 0


@pytest.mark.parametrize(
    ("reply", "error", "reason"),
    [
        ("", EmptyReplyError, "empty reply"),
        ("   ", EmptyReplyError, "empty reply"),
        ("Reasoning:  ", RowRejected, "empty reasoning trace"),
    ],
)
async def test_empty_trace_rejects_the_row(reply: str, error: type[Exception], reason: str):
    gateway, _ = _gateway(lambda route, request: reply)
    row = _row()
    with pytest.raises(error, match=reason):
        await ReasoningTraces(gateway.model("fake/test")).process_row(row, StepContext())
    assert "reasoning" not in row
    await gateway.aclose()


def test_clean_trace_strips_labels_only_at_the_start():
    assert clean_trace("Thinking: 1. a") == "1. a"
    assert clean_trace("1. reasoning: keep this") == "1. reasoning: keep this"
