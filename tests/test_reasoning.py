"""Reasoning traces on the fake model: written forward, their final answer checked against the row's."""

from __future__ import annotations

import json

import pytest

from datamill.core.errors import EmptyReplyError
from datamill.llm.gateway import Gateway
from datamill.llm.providers.fake import FakeProvider
from datamill.llm.routing import Routing
from datamill.llm.types import ChatRequest, Route
from datamill.steps.answer_match import closed_verdict, split_trace
from datamill.steps.base import RowRejected, StepContext
from datamill.steps.metadata_injection import CONTEXT_INJECTED
from datamill.steps.reasoning import ATTEMPTS, ReasoningTraces, clean_trace

STEPS = "1. The request asks how to share a folder.\n2. Sharing is in the folder menu."
TRACE = STEPS + "\nFinal answer: open the folder, choose Share and add the team"
COMPLETION = "Open the folder, choose Share and add your team."


def _gateway(responder=None) -> tuple[Gateway, FakeProvider]:
    fake = FakeProvider(responder=responder)
    return Gateway(Routing.load(), providers={"fake": fake}), fake


def _row(**extra) -> dict:
    row = {
        "_row": 1,
        "original_prompt": "how share folder",
        "enhanced_prompt": "How do I share a folder with my team?",
        "enhanced_completion": COMPLETION,
        "_context": "product: Cloud Drive",
    }
    row.update(extra)
    return row


def _is_judge(request: ChatRequest) -> bool:
    return request.json_schema is not None


def _scripted(traces: list[str], verdicts: list[bool]):
    """Answers trace requests with ``traces`` in turn and judge requests with ``verdicts`` in turn."""
    traces, verdicts = list(traces), list(verdicts)

    def respond(route: Route, request: ChatRequest) -> str:
        if _is_judge(request):
            agree = verdicts.pop(0)
            return json.dumps({"reason": "same steps" if agree else "a different menu", "agree": agree})
        return traces.pop(0)

    return respond


async def test_the_trace_is_written_from_the_prompt_without_the_completion():
    gateway, fake = _gateway(_scripted(["Reasoning: " + TRACE], [True]))
    step = ReasoningTraces(gateway.model("fake/test"))
    row = _row()
    await step.process_row(row, StepContext())
    assert row["reasoning"] == STEPS  # the final answer line is the completion's job
    trace_request, judge_request = fake.calls
    assert trace_request == step.trace_request(row)
    user = trace_request.messages[-1].content
    assert "How do I share a folder with my team?" in user
    assert "product: Cloud Drive" in user
    assert COMPLETION not in "\n".join(m.content for m in trace_request.messages)
    judged = judge_request.messages[-1].content
    assert COMPLETION in judged
    assert "open the folder, choose Share and add the team" in judged
    await gateway.aclose()


async def test_a_trace_whose_answer_disagrees_is_written_again_and_then_the_row_is_rejected():
    wrong = STEPS + "\nFinal answer: email the folder to each person"
    gateway, fake = _gateway(_scripted([wrong, wrong], [False, False]))
    row = _row()
    with pytest.raises(RowRejected, match="disagrees with the completion") as caught:
        await ReasoningTraces(gateway.model("fake/test")).process_row(row, StepContext())
    assert "email the folder" in str(caught.value)
    assert "a different menu" in str(caught.value)  # the judge's reason is named
    traces = [r for r in fake.calls if not _is_judge(r)]
    assert len(traces) == ATTEMPTS
    assert traces[0].seed != traces[1].seed  # the second trace is a new request, not a cache hit
    assert "reasoning" not in row
    await gateway.aclose()


async def test_a_second_trace_that_agrees_keeps_the_row():
    wrong = STEPS + "\nFinal answer: email the folder to each person"
    gateway, _ = _gateway(_scripted([wrong, TRACE], [False, True]))
    row = _row()
    await ReasoningTraces(gateway.model("fake/test")).process_row(row, StepContext())
    assert row["reasoning"] == STEPS
    await gateway.aclose()


async def test_closed_answers_are_compared_by_rule_without_a_judge():
    row = _row(enhanced_prompt="How many minutes are in 2.5 hours?", enhanced_completion="150")
    gateway, fake = _gateway(_scripted(["1. 2.5 × 60.\nFinal answer: 125 minutes"] * 2, []))
    with pytest.raises(RowRejected, match=r"'125 minutes'.*rule"):
        await ReasoningTraces(gateway.model("fake/test")).process_row(row, StepContext())
    assert not any(_is_judge(r) for r in fake.calls)
    await gateway.aclose()

    gateway, fake = _gateway(_scripted(["1. 2.5 × 60.\nFinal answer: 150 minutes"], []))
    await ReasoningTraces(gateway.model("fake/test")).process_row(row, StepContext())
    assert row["reasoning"] == "1. 2.5 × 60."
    assert len(fake.calls) == 1
    await gateway.aclose()


async def test_the_judge_is_the_given_model():
    fake, judge = (
        FakeProvider(responder=_scripted([TRACE], [])),
        FakeProvider(responder=_scripted([], [True])),
    )
    routing = Routing.from_dict(
        {
            "routes": {
                "writer/m": {"provider": "fake", "model": "m"},
                "judge/m": {"provider": "judge", "model": "m"},
            }
        }
    )
    gateway = Gateway(routing, providers={"fake": fake, "judge": judge})
    step = ReasoningTraces(gateway.model("writer/m"), judge=gateway.model("judge/m"))
    await step.process_row(_row(), StepContext())
    assert [_is_judge(r) for r in fake.calls] == [False]
    assert [_is_judge(r) for r in judge.calls] == [True]
    await gateway.aclose()


def test_reasoning_prompt_skips_injected_context_and_has_a_worked_example():
    gateway, _ = _gateway()
    step = ReasoningTraces(gateway.model("fake/test"))
    request = step.trace_request(_row(**{CONTEXT_INJECTED: True}))
    assert "product: Cloud Drive" not in request.messages[-1].content
    roles = [m.role for m in request.messages]
    assert roles == ["system", "user", "assistant", "user"]
    assert '"Final answer:"' in request.messages[0].content
    assert request.messages[2].content.splitlines()[-1].startswith("Final answer:")


def test_reasoning_estimate_counts_the_trace_and_the_judge():
    gateway, _ = _gateway()
    step = ReasoningTraces(gateway.model("fake/test"))
    row = {"original_prompt": "q?", "original_completion": "old answer", "_context": ""}
    trace, judge = step.requests_for(row)
    assert "old answer" not in trace.messages[-1].content
    assert "old answer" in judge.messages[-1].content
    assert step.expected_output_tokens > 0


@pytest.mark.parametrize(
    ("reply", "error", "reason"),
    [
        ("", EmptyReplyError, "empty reply"),
        ("   ", EmptyReplyError, "empty reply"),
        ("Reasoning:  ", RowRejected, "empty reasoning trace"),
        ("Final answer: share it", RowRejected, "empty reasoning trace"),
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


@pytest.mark.parametrize(
    ("text", "steps", "answer"),
    [
        ("1. a\n2. b\nFinal answer: 42", "1. a\n2. b", "42"),
        ("1. a\n**Final answer:** 42", "1. a", "42"),
        ("1. a\n### Final Answer: forty-two\nand more", "1. a", "forty-two\nand more"),
        ("1. a\n2. So it is 42.", "1. a\n2. So it is 42.", "2. So it is 42."),
        ("", "", None),
    ],
)
def test_split_trace(text: str, steps: str, answer: str | None):
    assert split_trace(text) == (steps, answer)


@pytest.mark.parametrize(
    ("reached", "completion", "verdict"),
    [
        ("150 minutes", "150", True),
        ("1,000", "1000.0", True),
        ("125 minutes", "150 minutes", False),
        ("Yes", "No, it is not.", False),
        ("Paris", "paris.", True),
        ("Paris", "It is Paris.", None),  # no rule decides: the judge does
        ("150", "There are 150 minutes in two and a half hours.", None),
    ],
)
def test_closed_verdict(reached: str, completion: str, verdict: bool | None):
    assert closed_verdict(reached, completion) is verdict
