"""The novelty gate: near copies of a seed or of an earlier sample are regenerated and counted."""

from __future__ import annotations

import json

import pytest

from datamill.core.errors import ValidationError
from datamill.core.generation_request import parse_generation_request
from datamill.core.spec import parse_spec_yaml
from datamill.llm.gateway import Gateway
from datamill.llm.providers.fake import FakeProvider
from datamill.llm.routing import Routing
from datamill.llm.types import ChatRequest, Route
from datamill.pipelines.generate import GenerationModels, GenerationRun
from datamill.steps.generation.novelty import NoveltyFilter
from datamill.steps.generation.seeds import seeds_from_texts

SEEDS = [
    "The kettle boils a full litre in under two minutes and the handle stays cool to the touch.",
    "My toaster stopped heating on one side after a week, and support never answered my emails.",
]
SPEC = parse_spec_yaml(
    """
spec:
  description: A one-line product review
  data_property_variations:
    - property_name: Sentiment
      property_values: [positive, negative]
      base_distributions: {positive: 50, negative: 50}
"""
)
NEW = [
    "The blender crushes ice in seconds, though it is louder than my old one.",
    "These headphones fold flat, pair quickly with my phone and last a whole flight.",
    "The desk lamp flickers at its lowest setting, which makes reading at night tiring.",
]


def test_a_near_copy_of_a_seed_is_refused_and_a_new_text_is_not():
    novelty = NoveltyFilter([("kettle.txt", SEEDS[0]), ("toaster.txt", SEEDS[1])])
    copy = SEEDS[0].replace("two minutes", "2 minutes")
    problem = novelty.problem(copy)
    assert problem is not None
    assert "a near copy of seed 'kettle.txt'" in problem
    assert novelty.problem(NEW[0]) is None


def test_a_sample_repeating_an_earlier_one_is_refused():
    novelty = NoveltyFilter()
    assert novelty.admit(NEW[0], 1) is None
    assert novelty.admit(NEW[1], 2) is None
    repeat = novelty.admit(NEW[0].replace("seconds", "a few seconds"), 3)
    assert repeat is not None
    assert "sample 1" in repeat
    assert novelty.problem(NEW[2]) is None  # a refused text was not recorded: only accepted ones count


def test_row_samples_are_compared_on_their_values():
    seed = json.dumps({"question": "Does the kettle switch off by itself when the water boils?", "stars": 4})
    novelty = NoveltyFilter([("rows.jsonl#1", seed)], structured=True)
    same_values = json.dumps(
        {"stars": 4, "question": "Does the kettle switch off by itself when the water boils?"}
    )
    assert novelty.problem(same_values) is not None
    other = json.dumps({"question": "How long does the battery of the drill last on one charge?", "stars": 4})
    assert novelty.problem(other) is None


async def test_a_run_regenerates_a_near_copy_of_a_seed_and_counts_it():
    drafts: list[str] = []

    def respond(route: Route, request: ChatRequest) -> str:
        # The first two drafts copy the seeds; every later draft is a new review.
        reply = SEEDS[len(drafts)] if len(drafts) < 2 else NEW[len(drafts) - 2]
        drafts.append(reply)
        return reply

    gateway = Gateway(Routing.load(), providers={"fake": FakeProvider(responder=respond)})
    request = parse_generation_request(
        {"generation_model": "fake/gen", "number_of_samples": 2, "skip_outline": True}
    )
    run = GenerationRun(
        SPEC,
        request,
        GenerationModels.resolve(gateway, request),
        seeds_from_texts(SEEDS),
        gateway=gateway,
        concurrency=1,
    )
    result = await run.run()
    await gateway.aclose()
    assert [s.text for s in result.samples] == NEW[:2]
    assert result.summary.rejected_by_gate == {"novelty": 2}
    assert result.summary.candidates == 4
    assert "a near copy of seed 'seed_1'" in result.summary.reasons["novelty"]
    assert result.summary.to_dict()["rejected_by_gate"]["novelty"] == 2


async def test_one_turns_the_gate_off():
    gateway = Gateway(Routing.load(), providers={"fake": FakeProvider(responder=lambda r, q: SEEDS[0])})
    request = parse_generation_request(
        {"generation_model": "fake/gen", "number_of_samples": 2, "skip_outline": True, "novelty_threshold": 1}
    )
    run = GenerationRun(
        SPEC, request, GenerationModels.resolve(gateway, request), seeds_from_texts(SEEDS), gateway=gateway
    )
    result = await run.run()
    await gateway.aclose()
    assert [s.text for s in result.samples] == [SEEDS[0]] * 2
    assert "novelty" not in result.summary.rejected_by_gate


@pytest.mark.parametrize("value", [0.1, 1.5, "high", True])
def test_the_threshold_is_validated(value: object):
    with pytest.raises(ValidationError, match="novelty_threshold"):
        parse_generation_request({"number_of_samples": 1, "novelty_threshold": value})
