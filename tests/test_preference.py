"""Preference pairs on a scripted fake model: candidates ranked in both orders, the margin, the three modes.

The scripted judge reads which answer the request shows as A and gives the verdict a judge that knows each
answer's quality would give, so the rules can be checked exactly: both orders are asked, an inconsistent
(position-following) judgement rejects the row, a pair below the margin is dropped.
"""

from __future__ import annotations

import json
from collections import Counter

import pytest

from datamill.core.errors import ValidationError
from datamill.llm.gateway import Gateway
from datamill.llm.providers.fake import FakeProvider
from datamill.llm.routing import Routing
from datamill.llm.types import ChatRequest, Route
from datamill.steps.base import RowRejected, StepContext
from datamill.steps.judging import PAIR_SCHEMA
from datamill.steps.preference import FLAWS, PreferencePairs, choose_flaw

COMPLETION = "Open the folder, choose Share and add your team by email."
SAMPLES = {
    1: "Right-click the folder, pick Share, type your team's emails and press Send.",
    2: "Folders cannot be shared.",
}
BLUEPRINT = "Speak like a friendly pirate."
#: How good each answer is, as the scripted judge sees it.
QUALITY = {COMPLETION: 3, SAMPLES[1]: 5, SAMPLES[2]: 0}


def _gateway(responder=None) -> tuple[Gateway, FakeProvider]:
    fake = FakeProvider(responder=responder)
    return Gateway(Routing.load(), providers={"fake": fake}), fake


def _row(n: int = 1, **extra) -> dict:
    row = {
        "_row": n,
        "original_prompt": f"how share folder {n}",
        "enhanced_prompt": "How do I share a folder with my team?",
        "enhanced_completion": COMPLETION,
        "_context": "",
    }
    row.update(extra)
    return row


def _is_judge(request: ChatRequest) -> bool:
    return request.json_schema == PAIR_SCHEMA


def _shown(request: ChatRequest) -> tuple[str, str]:
    """The answers a judge request shows as A and as B."""
    text = request.messages[-1].content
    a = text.split("<<<BEGIN ANSWER A>>>")[1].split("<<<END ANSWER A>>>")[0].strip()
    b = text.split("<<<BEGIN ANSWER B>>>")[1].split("<<<END ANSWER B>>>")[0].strip()
    return a, b


def verdict_by_quality(a: str, b: str) -> str:
    diff = QUALITY.get(a, 1) - QUALITY.get(b, 1)
    if diff == 0:
        return "A=B"
    strength = ">>" if abs(diff) >= 3 else ">"
    return f"A{strength}B" if diff > 0 else f"B{strength}A"


class Script:
    """Samples by seed; flawed rewrites and revisions; judge verdicts from `verdict` (default: by quality)."""

    def __init__(self, verdict=verdict_by_quality, *, revision: str = "", rewrite: str = "") -> None:
        self.verdict = verdict
        self.revision = revision
        self.rewrite = rewrite
        self.judged: list[tuple[str, str]] = []

    def __call__(self, route: Route, request: ChatRequest) -> str:
        if _is_judge(request):
            a, b = _shown(request)
            self.judged.append((a, b))
            return json.dumps(
                {
                    "rationale": f"compared {QUALITY.get(a)} and {QUALITY.get(b)}",
                    "verdict": self.verdict(a, b),
                }
            )
        system = request.messages[0].content
        if system.startswith("You improve assistant answers"):
            return self.revision
        if system.startswith("You help build training data"):
            return self.rewrite
        return SAMPLES[request.seed]


async def test_candidates_are_ranked_in_both_orders_and_the_best_and_worst_kept():
    script = Script()
    gateway, fake = _gateway(script)
    step = PreferencePairs(gateway.model("fake/test"), blueprint=BLUEPRINT, token_range=(40, 150))
    row = _row()
    await step.process_row(row, StepContext())
    await gateway.aclose()
    assert row["chosen"] == SAMPLES[1]
    assert row["rejected"] == SAMPLES[2]
    assert row["pair_method"] == "candidates"
    assert row["pair_margin"] == 2.0
    assert row["rejected_flaw"] is None
    # Three candidates, three comparisons, each judged with either answer first.
    assert len(script.judged) == 6
    assert Counter(frozenset(p) for p in script.judged) == {frozenset(p): 2 for p in script.judged}
    assert {p for p in script.judged} == {(b, a) for a, b in script.judged}
    assert len(row["pair_comparisons"]) == 3
    assert all(c["consistent"] for c in row["pair_comparisons"])
    best_vs_worst = next(c for c in row["pair_comparisons"] if {c["x"], c["y"]} == {"sample 1", "sample 2"})
    assert best_vs_worst["winner"] == ("x" if best_vs_worst["x"] == "sample 1" else "y")
    samples = [c for c in fake.calls if not _is_judge(c)]
    assert [c.seed for c in samples] == [1, 2]
    assert all(c.temperature == 0.8 for c in samples)
    judge = next(c for c in fake.calls if _is_judge(c))
    assert judge.temperature == 0.0
    assert BLUEPRINT in "\n".join(m.content for m in judge.messages)
    assert "40 to 150 tokens" in judge.messages[0].content


async def test_a_judge_that_follows_the_position_is_reported_inconsistent_and_the_row_rejected():
    script = Script(lambda a, b: "A>B")
    gateway, _ = _gateway(script)
    row = _row()
    with pytest.raises(RowRejected, match=r"inconsistent judgement of .*: the verdict followed the order"):
        await PreferencePairs(gateway.model("fake/test")).process_row(row, StepContext())
    await gateway.aclose()
    assert len(script.judged) == 6
    assert "chosen" not in row


async def test_a_pair_below_the_margin_is_dropped():
    # Only "better" in one order and a tie in the other: margin 0.5, below the default 1.0.
    def lukewarm(a: str, b: str) -> str:
        return "A>B" if QUALITY.get(a, 1) > QUALITY.get(b, 1) else "A=B"

    gateway, _ = _gateway(Script(lukewarm))
    with pytest.raises(RowRejected, match=r"margin 0\.5 of sample 1 over .* is below the minimum 1"):
        await PreferencePairs(gateway.model("fake/test")).process_row(_row(), StepContext())
    await gateway.aclose()

    gateway, _ = _gateway(Script(lukewarm))
    row = _row()
    await PreferencePairs(gateway.model("fake/test"), min_margin=0.5).process_row(row, StepContext())
    await gateway.aclose()
    assert row["pair_margin"] == 0.5


async def test_a_model_that_samples_deterministically_gets_a_revision_instead():
    script = Script(revision=SAMPLES[1])

    def same_samples(route: Route, request: ChatRequest) -> str:
        return COMPLETION if request.seed in SAMPLES else script(route, request)

    gateway, fake = _gateway(same_samples)
    row = _row()
    await PreferencePairs(gateway.model("fake/test")).process_row(row, StepContext())
    await gateway.aclose()
    assert (row["chosen"], row["rejected"]) == (SAMPLES[1], COMPLETION)
    assert row["pair_method"] == "revision"
    assert len(script.judged) == 2

    # A revision that changes nothing leaves nothing to compare either: no judge is asked.
    gateway, fake = _gateway(lambda route, request: COMPLETION)
    with pytest.raises(RowRejected, match="the revision was the same as the completion"):
        await PreferencePairs(gateway.model("fake/test")).process_row(_row(), StepContext())
    await gateway.aclose()
    assert not any(_is_judge(c) for c in fake.calls)


async def test_other_models_each_write_a_candidate():
    writers: list[str] = []
    script = Script()

    def responder(route: Route, request: ChatRequest) -> str:
        if not _is_judge(request):
            writers.append(route.model)
            if route.model == "other":
                return SAMPLES[1]
            return SAMPLES[2]
        return script(route, request)

    gateway, _ = _gateway(responder)
    step = PreferencePairs(
        gateway.model("fake/test"),
        judge=gateway.model("fake/judge"),
        candidates=2,
        candidate_models=[gateway.model("fake/other")],
    )
    row = _row()
    await step.process_row(row, StepContext())
    await gateway.aclose()
    assert sorted(writers) == ["other", "test"]
    assert row["chosen"] == SAMPLES[1]
    assert {c["x"] for c in row["pair_comparisons"]} | {c["y"] for c in row["pair_comparisons"]} == {
        "completion",
        "sample 1",
        "model:fake/other",
    }


async def test_revision_mode_keeps_the_minimal_revision_as_chosen():
    revised = SAMPLES[1]
    script = Script(revision=revised)
    gateway, fake = _gateway(script)
    row = _row()
    await PreferencePairs(gateway.model("fake/test"), mode="revision").process_row(row, StepContext())
    await gateway.aclose()
    assert (row["chosen"], row["rejected"]) == (revised, COMPLETION)
    assert row["pair_method"] == "revision"
    assert len(script.judged) == 2
    revision_request = fake.calls[0]
    assert COMPLETION in revision_request.messages[-1].content
    assert revision_request.temperature == 0.0


async def test_flaw_mode_is_judged_in_both_orders_and_a_losing_rewrite_rejects_the_row():
    script = Script(rewrite=SAMPLES[2])
    gateway, fake = _gateway(script)
    row = _row()
    await PreferencePairs(gateway.model("fake/test"), mode="flaw").process_row(row, StepContext())
    assert (row["chosen"], row["rejected"]) == (COMPLETION, SAMPLES[2])
    assert row["rejected_flaw"] == choose_flaw(row).key
    assert choose_flaw(row).describe(False) in fake.calls[0].messages[-1].content
    assert len(script.judged) == 2
    await gateway.aclose()

    # A "flawed" rewrite that is better than the completion is no pair; there is no second, harsher try.
    script = Script(rewrite=SAMPLES[1])
    gateway, fake = _gateway(script)
    with pytest.raises(RowRejected, match="margin -1 of completion over flaw:"):
        await PreferencePairs(gateway.model("fake/test"), mode="flaw").process_row(_row(), StepContext())
    await gateway.aclose()
    assert len(fake.calls) == 3


async def test_row_without_a_completion_is_rejected():
    gateway, fake = _gateway(Script())
    with pytest.raises(RowRejected, match="no completion"):
        await PreferencePairs(gateway.model("fake/test")).process_row(
            _row(enhanced_completion=""), StepContext()
        )
    assert fake.calls == []
    await gateway.aclose()


def test_bad_settings_are_refused():
    gateway, _ = _gateway()
    model = gateway.model("fake/test")
    with pytest.raises(ValidationError, match="preference_mode"):
        PreferencePairs(model, mode="best")
    with pytest.raises(ValidationError, match="preference_candidates"):
        PreferencePairs(model, candidates=1)
    with pytest.raises(ValidationError, match="preference_min_margin"):
        PreferencePairs(model, min_margin=3)


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


def test_estimate_requests_and_expected_tokens():
    gateway, _ = _gateway()
    step = PreferencePairs(gateway.model("fake/test"), token_range=(40, 150))
    requests = step.requests_for(_row())
    written = [r for r in requests if r.json_schema is None]
    judged = [r for r in requests if r.json_schema is not None]
    assert len(written) == 2
    assert len(judged) == 6
    assert step.expected_output_tokens == 2 * 95 + 6 * 150
    flaw = PreferencePairs(gateway.model("fake/test"), mode="flaw")
    assert [r.json_schema is None for r in flaw.requests_for(_row())] == [True, False, False]
