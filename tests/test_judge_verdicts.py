"""The yes/no judges (generation's conformance gate, the safety review) follow the judging protocol.

Rationale first in the schema, described answers in the prompt, and every quirky reply read the one way
`datamill.steps.judging` reads it: reasoning before the JSON and fenced or prose-wrapped JSON are read
through; a refusal, a cut, a filtered or an empty reply gives no verdict and fails the sample or rejects
the row with a reason naming it. Quirks come from the provider simulator over real HTTP and from the fake
model's scripted replies.
"""

from __future__ import annotations

import json

import pytest

from datamill.core.generation_request import parse_generation_request
from datamill.core.spec import parse_spec_yaml
from datamill.llm.gateway import Gateway
from datamill.llm.providers.fake import FakeProvider
from datamill.llm.routing import Routing
from datamill.llm.simulator import ProviderSimulator, WireRequest
from datamill.llm.types import ChatRequest, Route
from datamill.pipelines.generate import GenerationBudgetSpent, GenerationModels, GenerationRun
from datamill.steps.base import RowRejected, StepContext
from datamill.steps.generation.gates import FOLLOWS_RULES, ConformanceGate
from datamill.steps.generation.sample import SampleTask
from datamill.steps.safety import SafetyReview

SPEC = parse_spec_yaml(
    """
spec:
  description: A one-line product review
  requirements: [One sentence]
  data_property_variations:
    - property_name: Sentiment
      property_values: [enthusiastic, furious]
      base_distributions: {enthusiastic: 50, furious: 50}
"""
)
KETTLE = "This kettle is a joy: it boils fast and looks great."
BRICK = "Hit him with a brick when he is not looking."
LEVELS_NONE = {"violence": 1, "self_harm": 1, "harassment": 1, "hate": 1, "sexual": 1}

READ_THROUGH = ["think", "reasoning_field", "json_fence", "prose_json"]
#: The quirks that leave no verdict, and the reason name each rejection carries.
NO_VERDICT = {
    "refusal_text": "refusal",
    "refusal_field": "refusal",
    "truncation": "truncated",
    "empty": "empty",
    "content_filter": "content_filter",
}


def _judge_reply(sample: str, system: str) -> str:
    """What a sensible judge answers: the kettle review reads as enthusiastic, the brick answer is violent."""
    if "content-safety reviewer" in system:
        harmful = BRICK in sample.split("<<<BEGIN RESPONSE>>>")[-1]
        response = LEVELS_NONE | {"violence": 5 if harmful else 1}
        rationale = "The response tells how to hurt someone." if harmful else "Nothing harmful."
        return json.dumps({"rationale": rationale, "prompt": LEVELS_NONE, "response": response})
    sentiment = "enthusiastic" if "joy" in sample else "furious"
    return json.dumps(
        {"rationale": f"The review sounds {sentiment}.", "properties": {"Sentiment": sentiment},
         "violations": [], "conforms": True}
    )  # fmt: skip


def _sim_responder(request: WireRequest) -> str:
    return _judge_reply(request.last_user, request.system)


def _task(sentiment: str) -> SampleTask:
    return SampleTask(1, 0, {"Sentiment": sentiment}, SPEC)


def _row(answer: str) -> dict[str, object]:
    return {"_row": 1, "enhanced_prompt": "How do I deal with my neighbour?", "enhanced_completion": answer}


def test_the_prompts_describe_the_verdicts_and_ask_for_the_rationale_first() -> None:
    gateway = Gateway(Routing.load(), providers={"fake": FakeProvider()})
    (request,) = ConformanceGate(gateway.model("fake/judge")).requests_for(_task("furious"), KETTLE)
    assert request.json_schema is not None
    assert list(request.json_schema["properties"]) == ["rationale", "properties", "violations", "conforms"]
    assert request.json_schema["required"] == ["rationale", "properties", "violations", "conforms"]
    system = request.messages[0].content
    assert FOLLOWS_RULES.text() in system
    assert "  true = " in system
    assert "  false = " in system
    assert system.index("rationale") < system.index("classify")


@pytest.mark.parametrize("behaviour", READ_THROUGH)
async def test_the_gate_reads_its_verdict_through_reasoning_fences_and_prose(behaviour: str) -> None:
    async with ProviderSimulator(seed=3, responder=_sim_responder) as sim:
        sim.set(behaviour, 1.0)
        async with Gateway(Routing.from_dict(sim.routes())) as gateway:
            gate = ConformanceGate(gateway.model("sim-openai/gpt"))
            passed = await gate.problem(_task("enthusiastic"), KETTLE)
            failed = await gate.problem(_task("furious"), KETTLE)
    assert all(entry.behaviour == behaviour for entry in sim.log)
    assert passed is None
    assert failed == "Sentiment: asked for 'furious', the sample reads as 'enthusiastic'"


@pytest.mark.parametrize(("behaviour", "reason"), list(NO_VERDICT.items()))
async def test_a_gate_judge_that_gives_no_verdict_fails_the_sample_naming_why(
    behaviour: str, reason: str
) -> None:
    async with ProviderSimulator(seed=3, responder=_sim_responder) as sim:
        sim.set(behaviour, 1.0)
        async with Gateway(Routing.from_dict(sim.routes())) as gateway:
            problem = await ConformanceGate(gateway.model("sim-openai/gpt")).problem(
                _task("enthusiastic"), KETTLE
            )
    assert problem is not None
    assert problem.startswith(f"the judge gave no verdict ({reason}): ")


@pytest.mark.parametrize("behaviour", READ_THROUGH)
async def test_the_safety_review_reads_its_verdict_through_reasoning_fences_and_prose(behaviour: str) -> None:
    async with ProviderSimulator(seed=3, responder=_sim_responder) as sim:
        sim.set(behaviour, 1.0)
        async with Gateway(Routing.from_dict(sim.routes())) as gateway:
            step = SafetyReview(gateway.model("sim-openai/gpt"), categories=["violence"])
            safe = _row("Talk to him, or ask a mediator.")
            await step.process_row(safe, StepContext())
            with pytest.raises(RowRejected) as info:
                await step.process_row(_row(BRICK), StepContext())
    assert safe["response_safety_issues"] == []
    assert str(info.value) == (
        "safety_review: response scored 1.00 for violence (threshold 0.5); "
        "the judge: The response tells how to hurt someone."
    )


@pytest.mark.parametrize(("behaviour", "reason"), list(NO_VERDICT.items()))
async def test_a_safety_review_without_a_verdict_rejects_the_row_naming_why(
    behaviour: str, reason: str
) -> None:
    async with ProviderSimulator(seed=3, responder=_sim_responder) as sim:
        sim.set(behaviour, 1.0)
        async with Gateway(Routing.from_dict(sim.routes())) as gateway:
            # Even in flag-only mode: a row nobody reviewed is not passed as safe.
            step = SafetyReview(
                gateway.model("sim-openai/gpt"), categories=["violence"], remove_violations=False
            )
            row = _row("Talk to him, or ask a mediator.")
            with pytest.raises(RowRejected) as info:
                await step.process_row(row, StepContext())
    assert str(info.value).startswith(f"safety_review: the judge gave no verdict ({reason}): ")
    assert "safety_scores" not in row


def _fake(reply: str) -> Gateway:
    return Gateway(Routing.load(), providers={"fake": FakeProvider(responder=lambda route, request: reply)})


async def test_the_fake_models_reasoning_wrapped_fenced_verdict_is_read() -> None:
    verdict = _judge_reply(KETTLE, "")
    gateway = _fake(f"<think>The review is happy.</think>\n```json\n{verdict}\n```")
    gate = ConformanceGate(gateway.model("fake/judge"))
    assert await gate.problem(_task("enthusiastic"), KETTLE) is None
    assert await gate.problem(_task("furious"), KETTLE) == (
        "Sentiment: asked for 'furious', the sample reads as 'enthusiastic'"
    )
    await gateway.aclose()


async def test_a_rule_break_without_listed_violations_is_explained_by_the_rationale() -> None:
    reply = {"rationale": "It runs to three sentences.", "properties": {"Sentiment": "enthusiastic"},
             "violations": [], "conforms": False}  # fmt: skip
    gateway = _fake(json.dumps(reply))
    problem = await ConformanceGate(gateway.model("fake/judge")).problem(_task("enthusiastic"), KETTLE)
    assert problem == "the judge found that the sample breaks a rule: It runs to three sentences."
    await gateway.aclose()


async def test_a_judge_that_always_refuses_fails_the_run_under_the_conformance_gate() -> None:
    def respond(route: Route, request: ChatRequest) -> str:
        if request.json_schema is not None:
            return "I can't help with that."
        return f"A joyful review #{request.seed}"

    gateway = Gateway(Routing.load(), providers={"fake": FakeProvider(responder=respond)})
    request = parse_generation_request(
        {
            "generation_model": "fake/writer",
            "judge_model": "fake/judge",
            "filtering_types": ["conformance"],
            "number_of_samples": 2,
            "skip_outline": True,
            "novelty_threshold": 1,
        }
    )
    run = GenerationRun(SPEC, request, GenerationModels.resolve(gateway, request), gateway=gateway)
    with pytest.raises(GenerationBudgetSpent) as info:
        await run.run()
    await gateway.aclose()
    summary = info.value.summary
    assert summary.delivered == 0
    assert summary.rejected_by_gate == {"conformance": summary.candidates}
    assert summary.reasons["conformance"].startswith("the judge gave no verdict (refusal): ")
