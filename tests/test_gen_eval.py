"""Evaluations of generation runs on a scripted judge: exact distributions, score, areas, failures, inputs."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from datamill.core.errors import PermanentModelError
from datamill.core.spec import parse_spec_yaml
from datamill.llm.gateway import Gateway
from datamill.llm.providers.fake import FakeProvider
from datamill.llm.routing import Routing
from datamill.llm.types import ChatRequest, Route
from datamill.pipelines.generate import GeneratedSample, GenerationResult, GenerationSummary
from datamill.pipelines.generate_output import write_generation
from datamill.pipelines.generation_eval import (
    EvalCounters,
    EvalSample,
    EvaluationFailed,
    classification_schema,
    evaluate_generation,
)
from datamill.pipelines.generation_eval_report import requested_marginals
from datamill.pipelines.generation_eval_samples import read_samples, samples_from_generation

SPEC = parse_spec_yaml(
    """
spec:
  description: A support email
  data_property_variations:
    - property_name: Tone
      property_description: How the writer sounds
      property_values: [formal, casual]
      base_distributions: {formal: 60, casual: 40}
    - property_name: Length
      property_values: [short, long]
      conditional_distributions:
        Tone:
          formal: {short: 25, long: 75}
          casual: {short: 100, long: 0}
"""
)

#: Sample number → the judge's reply (None: a reply that is not JSON, every time).
ANSWERS: dict[int, dict[str, str] | None] = {
    1: {"Tone": "formal", "Length": "long"},
    2: {"Tone": "casual", "Length": "short"},
    3: {"Tone": "casual", "Length": "unclear"},
    4: None,
}
SAMPLES = [
    EvalSample("sample_1", "email #1", {"Tone": "formal", "Length": "long"}),
    EvalSample("sample_2", "email #2", {"Tone": "formal", "Length": "short"}),
    EvalSample("sample_3", "email #3", {"Tone": "casual", "Length": "short"}),
    EvalSample("sample_4", "email #4", {"Tone": "formal", "Length": "long"}),
]


def _number(request: ChatRequest) -> int:
    return int(re.findall(r"email #(\d+)", "\n".join(m.content for m in request.messages))[-1])


def scripted(route: Route, request: ChatRequest) -> str:
    answer = ANSWERS[_number(request)]
    return "sorry, I cannot" if answer is None else json.dumps(answer)


def judge(responder=scripted) -> tuple[Gateway, FakeProvider]:
    fake = FakeProvider(responder=responder)
    return Gateway(Routing.load(), providers={"fake": fake}), fake


def test_requested_shares_fold_in_the_conditional_mixes():
    shares = requested_marginals(SPEC)
    assert shares["Tone"] == pytest.approx({"formal": 0.6, "casual": 0.4})
    assert shares["Length"] == pytest.approx({"short": 0.6 * 0.25 + 0.4, "long": 0.6 * 0.75})


async def test_handcrafted_case_gives_exact_distributions_score_and_areas():
    gateway, fake = judge()
    counters = EvalCounters()
    result = await evaluate_generation(SPEC, SAMPLES, gateway.model("fake/judge"), counters=counters)

    tone, length = result.distribution_analysis
    fit = tone.pop("goodness_of_fit")
    # 1 formal and 2 casual classified against 3 formal and 1 casual drawn: chi-square 2.78 on 1 degree of
    # freedom, which 3 samples do not make significant (and too few for the approximation to be reliable).
    assert (fit["samples"], fit["degrees_of_freedom"], fit["reliable"]) == (3, 1, False)
    assert fit["statistic"] == pytest.approx(2.7778, abs=1e-4)
    assert fit["p_value"] == pytest.approx(0.0956, abs=1e-4)
    assert fit["fits"] is True
    assert tone == {
        "property_name": "Tone",
        "requested_distributions": {"formal": 60.0, "casual": 40.0},
        "expected_distributions": {"formal": 75.0, "casual": 25.0},
        "evaluated_distributions": {"formal": 33.33, "casual": 66.67},
        "total_samples": 4,
        "total_samples_analyzed": 3,
    }
    assert length["requested_distributions"] == {"short": 55.0, "long": 45.0}
    assert length["expected_distributions"] == {"short": 50.0, "long": 50.0}
    assert length["evaluated_distributions"] == {"short": 33.33, "long": 33.33, "unclear": 33.33}
    # Pairs compared: 1 (2 of 2 match), 2 (Length only), 3 (Tone only): 4 of 6.
    assert result.conformance_score == 66.67
    assert (counters.done, counters.failed) == (4, 1)

    by_id = {c["sample_identifier"]: c for c in result.sample_classifications()}
    assert by_id["sample_1"]["conformant"] is True
    assert by_id["sample_2"]["conformant"] is False
    assert by_id["sample_3"]["classifications"] == {"Tone": "casual", "Length": "unclear"}
    assert by_id["sample_4"]["classifications"] == {}
    assert by_id["sample_4"]["conformant"] is None
    assert "OutputValidationError" in by_id["sample_4"]["error"]

    formal = next(a for a in result.non_conformant_areas if a["value"] == "formal")
    assert (formal["samples_drawn"], formal["samples_matched"], formal["match_rate"]) == (2, 1, 50.0)
    assert formal["difference_points"] == -41.67
    # Three analysed samples explain a 42-point gap: the interval holds the drawn share; the matches fail.
    low, high = formal["interval_percent"]
    assert low < 75.0 < high
    assert formal["samples_analyzed"] == 3
    assert "interval" not in formal["reason"]
    assert "only 1 of 2" in formal["reason"]
    assert [g["given"] for g in length["conditional_distributions"]] == [
        {"Tone": "formal"},
        {"Tone": "casual"},
    ]
    # With 3 samples analysed, no share is far enough from the drawn one: only the match rates fail areas.
    assert {(a["property_name"], a["value"]) for a in result.conformant_areas} == {
        ("Tone", "casual"),
        ("Length", "long"),
    }
    # The failing sample got one repair call; the judge never saw what was drawn.
    assert sum(_number(c) == 4 for c in fake.calls) == 2
    assert all("formal, long" not in c.messages[1].content for c in fake.calls)


async def test_a_judge_that_reads_the_truth_scores_100_with_every_area_conformant():
    def truthful(route: Route, request: ChatRequest) -> str:
        sample = next(s for s in SAMPLES if s.text == f"email #{_number(request)}")
        return json.dumps(sample.drawn)

    gateway, _ = judge(truthful)
    result = await evaluate_generation(SPEC, SAMPLES, gateway.model("fake/judge"), concurrency=2)
    assert result.conformance_score == 100.0
    assert result.non_conformant_areas == []
    assert {(a["property_name"], a["value"]) for a in result.conformant_areas} == {
        ("Tone", "formal"),
        ("Tone", "casual"),
        ("Length", "short"),
        ("Length", "long"),
    }
    assert result.to_dict()["samples_analyzed"] == 4


async def test_one_bad_reply_is_repaired():
    replies = iter(["not json", json.dumps({"Tone": "formal", "Length": "long"})])
    gateway, fake = judge(lambda route, request: next(replies))
    result = await evaluate_generation(SPEC, SAMPLES[:1], gateway.model("fake/judge"))
    assert result.samples[0].analysed
    assert result.conformance_score == 100.0
    assert len(fake.calls) == 2


async def test_no_sample_classified_fails_the_evaluation():
    gateway, _ = judge(lambda route, request: "nope")
    with pytest.raises(EvaluationFailed, match="none of the 2 samples could be classified"):
        await evaluate_generation(SPEC, SAMPLES[:2], gateway.model("fake/judge"))


async def test_an_error_every_call_would_hit_stops_the_evaluation():
    def refused(route: Route, request: ChatRequest) -> str:
        raise PermanentModelError("invalid key", status=401)

    gateway, _ = judge(refused)
    with pytest.raises(PermanentModelError, match="invalid key"):
        await evaluate_generation(SPEC, SAMPLES, gateway.model("fake/judge"))


async def test_default_fake_judge_answers_within_the_schema():
    gateway, _ = judge(responder=None)
    result = await evaluate_generation(SPEC, SAMPLES, gateway.model("fake/judge"))
    assert all(r.classified == {"Tone": "formal", "Length": "short"} for r in result.samples)
    schema = classification_schema(SPEC)
    assert schema["properties"]["Length"]["enum"] == ["short", "long", "unclear"]


async def test_a_spec_without_properties_makes_no_calls():
    spec = parse_spec_yaml("spec:\n  description: Anything\n")
    gateway, fake = judge()
    result = await evaluate_generation(spec, SAMPLES, gateway.model("fake/judge"))
    assert fake.calls == []
    assert result.conformance_score is None
    assert result.distribution_analysis == []


@pytest.mark.parametrize("output", ["out.jsonl", "folder"])
def test_samples_are_read_back_from_either_output_form(tmp_path: Path, output: str):
    generated = [
        GeneratedSample(1, '{"subject": "Hi"}', {"Tone": "formal", "Length": "long"}, 1),
        GeneratedSample(2, '{"subject": "Yo"}', {"Tone": "casual", "Length": "short"}, 2),
    ]
    result = GenerationResult(generated, GenerationSummary(2, 2, 3, {}))
    write_generation(result, tmp_path / output, structured=True)
    read = read_samples(tmp_path / output)
    assert [(s.identifier, s.drawn) for s in read] == [
        (s.identifier, s.drawn) for s in samples_from_generation(generated)
    ]
    assert json.loads(read[0].text) == {"subject": "Hi"}


class InFlight(FakeProvider):
    """The fake model, slowed down, counting how many calls it has at once."""

    def __init__(self) -> None:
        super().__init__(latency_s=0.01)
        self.now = self.most = 0

    async def complete(self, route: Route, request: ChatRequest):  # type: ignore[no-untyped-def]
        self.now += 1
        self.most = max(self.most, self.now)
        try:
            return await super().complete(route, request)
        finally:
            self.now -= 1


async def test_classifications_are_bounded_by_the_concurrency():
    provider = InFlight()
    gateway = Gateway(Routing.load(), providers={"fake": provider})
    samples = [EvalSample(f"sample_{i}", f"email #{i}", {"Tone": "formal"}) for i in range(1, 13)]
    result = await evaluate_generation(SPEC, samples, gateway.model("fake/judge"), concurrency=3)
    assert len(result.samples) == 12
    assert provider.most == 3
