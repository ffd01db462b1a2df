"""The conformance gate is blind to the drawn values and is answered by the judge, not the reviser."""

from __future__ import annotations

import json
import re

from datamill.core.generation_request import parse_generation_request
from datamill.core.spec import parse_spec_yaml
from datamill.llm.gateway import Gateway
from datamill.llm.providers.fake import FakeProvider, default_reply
from datamill.llm.routing import Routing
from datamill.llm.types import ChatRequest, Route
from datamill.pipelines.generate import GenerationModels, GenerationRun
from datamill.steps.generation.gates import ConformanceGate
from datamill.steps.generation.sample import SampleTask

SPEC = parse_spec_yaml(
    """
spec:
  description: A one-line product review
  requirements: [One sentence]
  data_property_variations:
    - property_name: Sentiment
      property_values: [enthusiastic, lukewarm, furious]
      base_distributions: {enthusiastic: 40, lukewarm: 30, furious: 30}
    - property_name: Product
      property_values: [kettle, toaster]
      base_distributions: {kettle: 50, toaster: 50}
"""
)
SAMPLE = "This kettle is a joy: it boils fast and looks great."


def _task(**properties: str) -> SampleTask:
    return SampleTask(1, 0, properties, SPEC)


def _judge(read: dict[str, str], *, conforms: bool = True, violations: tuple[str, ...] = ()):
    def respond(route: Route, request: ChatRequest) -> str:
        reply = {
            "rationale": "read",
            "properties": read,
            "violations": list(violations),
            "conforms": conforms,
        }
        return json.dumps(reply)

    return respond


def _gate(responder) -> tuple[ConformanceGate, FakeProvider, Gateway]:
    fake = FakeProvider(responder=responder)
    gateway = Gateway(Routing.load(), providers={"fake": fake})
    return ConformanceGate(gateway.model("fake/judge")), fake, gateway


def test_the_judge_is_not_told_the_drawn_values():
    gate, _, _ = _gate(None)
    asked_enthusiastic = gate.requests_for(_task(Sentiment="enthusiastic", Product="kettle"), SAMPLE)
    asked_furious = gate.requests_for(_task(Sentiment="furious", Product="toaster"), SAMPLE)
    # Whatever was drawn, the judge gets the same request: it cannot answer "yes, it has it".
    assert asked_enthusiastic == asked_furious
    text = "\n".join(m.content for m in asked_furious[0].messages)
    assert "must have" not in text
    assert "asked for" not in text
    # It sees every value of every property, to classify the sample against.
    assert '["enthusiastic", "lukewarm", "furious"]' in text
    assert "One sentence" in text


async def test_a_sample_read_as_another_value_fails_and_names_it():
    gate, _, gateway = _gate(_judge({"Sentiment": "enthusiastic", "Product": "kettle"}))
    problem = await gate.problem(_task(Sentiment="furious", Product="kettle"), SAMPLE)
    assert problem == "Sentiment: asked for 'furious', the sample reads as 'enthusiastic'"
    assert await gate.problem(_task(Sentiment="enthusiastic", Product="kettle"), SAMPLE) is None
    await gateway.aclose()


async def test_unclear_and_broken_rules_fail():
    gate, _, gateway = _gate(
        _judge({"Sentiment": "unclear", "Product": "kettle"}, conforms=False, violations=("two sentences",))
    )
    problem = await gate.problem(_task(Sentiment="lukewarm", Product="kettle"), SAMPLE)
    assert problem == "Sentiment: asked for 'lukewarm', the sample reads as 'unclear'; two sentences"
    await gateway.aclose()


def _writer_and_reader(route: Route, request: ChatRequest) -> str:
    if request.json_schema is not None and "conforms" in request.json_schema["properties"]:
        sample = request.messages[-1].content
        read = dict(re.findall(r"(\w+)=(\w+)", sample))
        return json.dumps({"rationale": "read", "properties": read, "violations": [], "conforms": True})
    if request.json_schema is not None:
        return default_reply(request)
    asked = re.findall(r"^- (\w+): (\w+)$", request.messages[-1].content, re.MULTILINE)
    return f"{route.name} #{request.seed}: " + " ".join(f"{k}={v}" for k, v in asked)


#: Two families on the fake model: the writers are "acme", the listed judge "otherco".
ROUTES = {
    "judge_models": ["acme/judge-large", "otherco/judge"],
    "routes": {
        "acme/*": {"provider": "fake"},
        "otherco/*": {"provider": "fake"},
        "fake/*": {"provider": "fake"},
    },
}


async def _run(body: dict[str, object], routing: Routing | None = None):
    fake = FakeProvider(responder=_writer_and_reader)
    gateway = Gateway(routing or Routing.load(), providers={"fake": fake})
    request = parse_generation_request(
        {
            "generation_model": "fake/writer",
            "revision_model": "fake/reviser",
            "revision_types": ["consistency"],
            "filtering_types": ["conformance"],
            "number_of_samples": 3,
            "skip_outline": True,
            "novelty_threshold": 1,
            **body,
        }
    )
    result = await GenerationRun(
        SPEC, request, GenerationModels.resolve(gateway, request), gateway=gateway
    ).run()
    await gateway.aclose()
    return result.summary


async def test_the_gate_uses_the_judge_model_and_never_the_reviser():
    summary = await _run({"judge_model": "fake/judge"})
    assert summary.conformance_model == "fake/judge"
    assert summary.usage["by_tag"]["gen_conformance"]["requests"] == 3
    assert set(summary.usage["by_model"]) == {"fake/writer", "fake/reviser", "fake/judge"}
    # Named, it is used as given; being of the writer's family ("fake"), the summary says so.
    assert len(summary.notes) == 1
    assert "judged by fake/judge, of the generator's family" in summary.notes[0]

    assert summary.judge is not None
    assert summary.judge["chosen_as"] == "set by the run"

    summary = await _run({})  # no judge named or configured: the writer judges, and the summary says so
    assert summary.conformance_model == "fake/writer"
    assert summary.judge is not None
    assert summary.judge["chosen_as"] == "the generator"
    assert summary.judge["same_model_as_generator"] is True
    assert "the model that generated the data" in summary.notes[0]
    assert "set judge_model" in summary.notes[0]
    assert summary.to_dict()["notes"] == summary.notes
    assert summary.to_dict()["judge"] == summary.judge


async def test_with_no_judge_named_the_gate_is_judged_by_a_listed_model_of_another_family():
    routing = Routing.from_dict(ROUTES)
    summary = await _run({"generation_model": "acme/writer", "revision_model": "acme/reviser"}, routing)
    # acme/judge-large is listed first but is the writer's family: the shared rule skips it.
    assert summary.conformance_model == "otherco/judge"
    assert summary.usage["by_tag"]["gen_conformance"]["requests"] == 3
    assert summary.usage["by_model"]["otherco/judge"]["requests"] == 3
    assert summary.judge is not None
    assert summary.judge["chosen_as"] == "another family"
    assert summary.judge["same_family_as_generator"] is False
    assert summary.notes == []

    # Named explicitly, a judge of the writer's own family is used as given, and the summary warns.
    summary = await _run(
        {
            "generation_model": "acme/writer",
            "revision_model": "acme/reviser",
            "judge_model": "acme/judge-large",
        },
        routing,
    )
    assert summary.conformance_model == "acme/judge-large"
    assert "of the generator's family" in summary.notes[0]
