"""Preference pairs on the fake model: columns, the flaw choice, the A/B shuffle and the judge retry path."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from datamill.llm.gateway import Gateway
from datamill.llm.providers.fake import FakeProvider
from datamill.llm.routing import Routing
from datamill.llm.types import ChatRequest, Route
from datamill.steps.base import RowRejected, StepContext
from datamill.steps.preference import FLAWS, PreferencePairs, choose_flaw, chosen_is_a

CHOSEN = "Open the folder, choose Share and add your team by email."
BLUEPRINT = "Speak like a friendly pirate."


def _gateway(responder=None) -> tuple[Gateway, FakeProvider]:
    fake = FakeProvider(responder=responder)
    return Gateway(Routing.load(), providers={"fake": fake}), fake


def _row(n: int = 1, **extra) -> dict:
    row = {
        "_row": n,
        "original_prompt": f"how share folder {n}",
        "enhanced_prompt": "How do I share a folder with my team?",
        "enhanced_completion": CHOSEN,
        "_context": "",
    }
    row.update(extra)
    return row


def _chosen_label(request: ChatRequest) -> str:
    """Which label the judge request gives the chosen answer (read from the rendered prompt)."""
    text = request.messages[-1].content
    return "A" if text.index(CHOSEN) < text.index("Answer B:") else "B"


def _is_judge(request: ChatRequest) -> bool:
    return request.json_schema is not None


class Script:
    """A responder: numbered rejected answers, and judge verdicts taken in turn (True = chosen wins)."""

    def __init__(self, verdicts: list[bool], rewrites: list[str] | None = None) -> None:
        self.verdicts = list(verdicts)
        self.rewrites = list(rewrites or [])
        self.rewrite_count = 0

    def __call__(self, route: Route, request: ChatRequest) -> str:
        if _is_judge(request):
            wins = self.verdicts.pop(0)
            label = _chosen_label(request)
            better = label if wins else ("B" if label == "A" else "A")
            reason = "chosen is correct" if wins else "the second answer is more accurate"
            return json.dumps({"reason": reason, "better": better})
        self.rewrite_count += 1
        if self.rewrites:
            return self.rewrites.pop(0)
        return f"Flawed answer number {self.rewrite_count}."


async def test_pair_columns_and_what_the_rewrite_prompt_contains():
    gateway, fake = _gateway(Script([True]))
    step = PreferencePairs(gateway.model("fake/test"), blueprint=BLUEPRINT, token_range=(40, 150))
    row = _row()
    await step.process_row(row, StepContext())
    flaw = choose_flaw(row)
    assert row["chosen"] == CHOSEN
    assert row["rejected"] == "Flawed answer number 1."
    assert row["rejected_flaw"] == flaw.key
    assert row["pair_judge_reason"] == "chosen is correct"
    assert len(fake.calls) == 2
    rewrite, judge = fake.calls
    assert rewrite == step.requests_for(row)[0]
    assert judge == step.judge_request(row, CHOSEN, row["rejected"])
    text = "\n".join(m.content for m in rewrite.messages)
    assert flaw.describe(True) in text
    assert BLUEPRINT in text
    assert CHOSEN in text
    assert "How do I share a folder with my team?" in text
    assert BLUEPRINT in "\n".join(m.content for m in judge.messages)
    assert judge.temperature == 0.0
    await gateway.aclose()


async def test_judge_prefers_rejected_once_then_the_rewrite_is_retried():
    gateway, fake = _gateway(Script([False, True]))
    step = PreferencePairs(gateway.model("fake/test"))
    row = _row()
    await step.process_row(row, StepContext())
    assert row["rejected"] == "Flawed answer number 2."
    assert row["pair_judge_reason"] == "chosen is correct"
    assert len(fake.calls) == 4
    first_rewrite, first_judge, second_rewrite, second_judge = fake.calls
    assert "unmistakable" not in first_rewrite.messages[-1].content
    assert "unmistakable" in second_rewrite.messages[-1].content
    assert first_rewrite.seed != second_rewrite.seed
    # The A/B order flips between attempts, so a position-biased judge cannot decide both.
    assert _chosen_label(first_judge) != _chosen_label(second_judge)
    await gateway.aclose()


async def test_judge_prefers_rejected_twice_rejects_the_row_with_its_reason():
    gateway, fake = _gateway(Script([False, False]))
    row = _row()
    with pytest.raises(RowRejected, match="the second answer is more accurate") as info:
        await PreferencePairs(gateway.model("fake/test")).process_row(row, StepContext())
    assert choose_flaw(row).key in str(info.value)
    assert len(fake.calls) == 4
    assert "chosen" not in row
    await gateway.aclose()


@pytest.mark.parametrize("rewrite", ["", f"  {CHOSEN.upper()}  "])
async def test_empty_or_unchanged_rewrite_is_retried_without_a_judge_call(rewrite: str):
    gateway, fake = _gateway(Script([True], rewrites=[rewrite]))
    row = _row()
    await PreferencePairs(gateway.model("fake/test")).process_row(row, StepContext())
    assert row["rejected"] == "Flawed answer number 2."
    assert [_is_judge(c) for c in fake.calls] == [False, False, True]
    await gateway.aclose()


async def test_row_without_a_completion_is_rejected():
    gateway, fake = _gateway(Script([]))
    with pytest.raises(RowRejected, match="no completion"):
        await PreferencePairs(gateway.model("fake/test")).process_row(
            _row(enhanced_completion=""), StepContext()
        )
    assert fake.calls == []
    await gateway.aclose()


def test_flaw_choice_is_deterministic_and_spread_over_rows():
    rows = [_row(n) for n in range(1, 301)]
    first = [choose_flaw(r).key for r in rows]
    assert first == [choose_flaw(dict(r)).key for r in rows]
    counts = Counter(first)
    assert set(counts) == {f.key for f in FLAWS}
    assert min(counts.values()) > 300 / len(FLAWS) / 2
    assert [choose_flaw(r, seed=1).key for r in rows] != first
    # Variants of one source row (language expansion keeps ``_row``) get their own choice.
    variants = {choose_flaw(_row(1, _variant=v, original_prompt=f"p{v}")).key for v in range(20)}
    assert len(variants) > 1


def test_wrong_tone_flaw_names_the_style_guide_when_there_is_one():
    tone = next(f for f in FLAWS if f.key == "wrong_tone")
    assert "style guide" in tone.describe(True)
    assert "style guide" not in tone.describe(False)


def test_chosen_position_is_shuffled_per_row():
    gateway, _ = _gateway()
    step = PreferencePairs(gateway.model("fake/test"))
    labels = []
    for n in range(1, 101):
        row = _row(n)
        judge = step.judge_request(row, CHOSEN, "worse", attempt=0)
        label = _chosen_label(judge)
        assert label == ("A" if chosen_is_a(row) else "B")
        labels.append(label)
    assert 25 < labels.count("A") < 75


async def test_a_separate_judge_model_gets_the_judge_calls():
    models: list[tuple[str, bool]] = []
    script = Script([True])

    def responder(route: Route, request: ChatRequest) -> str:
        models.append((route.model, _is_judge(request)))
        return script(route, request)

    gateway, _ = _gateway(responder)
    step = PreferencePairs(gateway.model("fake/writer"), judge=gateway.model("fake/judge"))
    await step.process_row(_row(), StepContext())
    assert models == [("writer", False), ("judge", True)]
    await gateway.aclose()


def test_estimate_requests_and_expected_tokens():
    gateway, _ = _gateway()
    step = PreferencePairs(gateway.model("fake/test"), token_range=(40, 150))
    rewrite, judge = step.requests_for(_row())
    assert rewrite.json_schema is None
    assert judge.json_schema is not None
    assert rewrite.max_tokens == step.max_tokens
    assert step.expected_output_tokens > 95
