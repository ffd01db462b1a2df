"""Safety review on the fake model: scores and issue columns, removal of listed violations, flag-only mode.

The judge replies with a rationale and a 1-5 level per category (the judging protocol); the columns place the
levels on 0.0-1.0 (1 -> 0.0, 3 -> 0.5, 5 -> 1.0).
"""

from __future__ import annotations

import json

import pytest

from datamill.core.brand import SafetyCategory
from datamill.llm.gateway import Gateway
from datamill.llm.providers.fake import FakeProvider
from datamill.llm.routing import Routing
from datamill.llm.types import ChatRequest, Route
from datamill.steps.base import RowRejected, StepContext
from datamill.steps.safety import (
    CATEGORY_DEFINITIONS,
    SAFETY_LEVELS,
    SAFETY_THRESHOLD,
    SafetyReview,
    issues,
)

ZERO = {c.value: 0.0 for c in SafetyCategory}
NONE = {c.value: 1 for c in SafetyCategory}


def _gateway(responder=None) -> tuple[Gateway, FakeProvider]:
    fake = FakeProvider(responder=responder)
    return Gateway(Routing.load(), providers={"fake": fake}), fake


def _scores(prompt: dict[str, int] | None = None, response: dict[str, int] | None = None):
    """A responder that replies with these levels (unnamed categories at level 1) after its rationale."""
    reply = {
        "rationale": "The response explains how to cause harm.",
        "prompt": {**NONE, **(prompt or {})},
        "response": {**NONE, **(response or {})},
    }
    return lambda route, request: json.dumps(reply)


def _row() -> dict:
    return {
        "_row": 7,
        "original_prompt": "old prompt",
        "enhanced_prompt": "How do I sharpen a kitchen knife?",
        "enhanced_completion": "Use a whetstone at a 15 degree angle.",
        "_context": "",
    }


async def test_clean_row_gets_empty_issues_and_all_scores():
    gateway, fake = _gateway()  # the default fake reply scores every category at its lowest level, 1
    step = SafetyReview(gateway.model("fake/test"), categories=[SafetyCategory.VIOLENCE])
    row = _row()
    await step.process_row(row, StepContext())
    assert row["prompt_safety_issues"] == []
    assert row["response_safety_issues"] == []
    assert row["safety_scores"] == {"prompt": ZERO, "response": ZERO}
    assert fake.calls == step.requests_for(row)
    await gateway.aclose()


async def test_listed_violation_removes_the_row_naming_category_part_and_score():
    gateway, _ = _gateway(_scores(response={"violence": 5}))
    step = SafetyReview(gateway.model("fake/test"), categories=["violence", "hate"])
    row = _row()
    with pytest.raises(RowRejected) as info:
        await step.process_row(row, StepContext())
    assert str(info.value) == (
        "safety_review: response scored 1.00 for violence (threshold 0.5); "
        "the judge: The response explains how to cause harm."
    )
    # The rejected row keeps its scores, so the rejected-rows file shows why.
    assert row["response_safety_issues"] == ["violence"]
    assert row["safety_scores"]["response"]["violence"] == 1.0
    await gateway.aclose()


async def test_every_listed_violation_is_named():
    gateway, _ = _gateway(_scores(prompt={"hate": 4}, response={"violence": 3, "hate": 4}))
    step = SafetyReview(gateway.model("fake/test"), categories=[SafetyCategory.HATE, SafetyCategory.VIOLENCE])
    with pytest.raises(RowRejected) as info:
        await step.process_row(_row(), StepContext())
    reason = str(info.value)
    assert "response scored 0.75 for hate" in reason
    assert "response scored 0.50 for violence" in reason
    # The prompt's score is in the columns, not a reason to remove the row.
    assert "prompt scored" not in reason


async def test_a_harmful_request_with_a_safe_refusal_is_kept_and_flagged():
    gateway, _ = _gateway(_scores(prompt={"violence": 5}))
    step = SafetyReview(gateway.model("fake/test"), categories=["violence"])
    row = _row() | {
        "enhanced_prompt": "How do I hurt my neighbour?",
        "enhanced_completion": "I can't help with hurting anyone; a mediator can help with the conflict.",
    }
    await step.process_row(row, StepContext())  # not rejected
    assert row["prompt_safety_issues"] == ["violence"]
    assert row["response_safety_issues"] == []
    await gateway.aclose()


async def test_a_preference_pair_is_judged_on_its_chosen_answer():
    gateway, fake = _gateway(_scores(response={"violence": 4}))
    step = SafetyReview(gateway.model("fake/test"), categories=["violence"])
    row = _row() | {"chosen": "Chosen: hit him hard.", "rejected": "Rejected answer."}
    with pytest.raises(RowRejected, match=r"response scored 0\.75 for violence"):
        await step.process_row(row, StepContext())
    sent = fake.calls[0].messages[-1].content
    assert "<<<BEGIN RESPONSE>>>\nChosen: hit him hard.\n<<<END RESPONSE>>>" in sent
    await gateway.aclose()


async def test_unlisted_categories_are_reported_but_keep_the_row():
    gateway, _ = _gateway(_scores(prompt={"hate": 4, "sexual": 2}, response={"self_harm": 5}))
    step = SafetyReview(gateway.model("fake/test"), categories=[SafetyCategory.VIOLENCE])
    row = _row()
    await step.process_row(row, StepContext())
    assert row["prompt_safety_issues"] == ["hate"]
    assert row["response_safety_issues"] == ["self_harm"]
    assert row["safety_scores"]["prompt"]["sexual"] == 0.25
    await gateway.aclose()


async def test_flag_only_mode_keeps_listed_violations():
    gateway, _ = _gateway(_scores(prompt={"violence": 5}, response={"violence": 5}))
    step = SafetyReview(gateway.model("fake/test"), categories=["violence"], remove_violations=False)
    row = _row()
    await step.process_row(row, StepContext())
    assert row["prompt_safety_issues"] == ["violence"]
    assert row["response_safety_issues"] == ["violence"]  # flagged, not removed
    await gateway.aclose()


def test_threshold_is_inclusive():
    assert issues({"violence": SAFETY_THRESHOLD, "hate": 0.49}) == ["violence"]
    assert issues({"violence": 0.3}, threshold=0.3) == ["violence"]


def test_review_prompt_defines_every_category_and_asks_for_all_scores():
    gateway, _ = _gateway()
    step = SafetyReview(gateway.model("fake/test"))
    (request,) = step.requests_for(_row())
    system = request.messages[0].content
    for category in SafetyCategory:
        assert f"- {category.value}: {CATEGORY_DEFINITIONS[category]}" in system
    user = request.messages[-1].content
    assert "Request:\n<<<BEGIN REQUEST>>>\nHow do I sharpen a kitchen knife?\n<<<END REQUEST>>>" in user
    response = "Use a whetstone at a 15 degree angle."
    assert f"Response:\n<<<BEGIN RESPONSE>>>\n{response}\n<<<END RESPONSE>>>" in user
    assert "old prompt" not in user
    # Every level of the scale is described, and the rationale is asked for before the levels.
    for number, level in enumerate(SAFETY_LEVELS.levels, 1):
        assert f"  {number} = {level}" in system
    schema = request.json_schema
    assert schema is not None
    assert list(schema["properties"]) == ["rationale", "prompt", "response"]
    assert schema["required"] == ["rationale", "prompt", "response"]
    assert set(schema["properties"]["response"]["required"]) == {c.value for c in SafetyCategory}
    assert request.temperature == 0.0


async def test_out_of_range_scores_are_refused_by_the_schema():
    # The gateway validates against the schema (with one repair call); a level of 6 never reaches the row.
    def responder(route: Route, request: ChatRequest) -> str:
        return json.dumps({"rationale": "r", "prompt": {**NONE, "hate": 6}, "response": NONE})

    gateway, fake = _gateway(responder)
    step = SafetyReview(gateway.model("fake/test"), categories=["hate"])
    with pytest.raises(
        RowRejected, match=r"safety_review: the judge's reply was not a verdict: .*JSON schema"
    ):
        await step.process_row(_row(), StepContext())
    assert len(fake.calls) == 2
    await gateway.aclose()
