"""Generation never delivers a cut sample.

Drafts, revisions and calculator fixes that the provider simulator cuts at the token limit are rejected (gate
``truncated``) and the slot is made again.
"""

from __future__ import annotations

import json

import pytest

from datamill.core.generation_request import parse_generation_request
from datamill.core.spec import parse_spec_yaml
from datamill.llm.gateway import Gateway
from datamill.llm.routing import Routing
from datamill.llm.simulator import ProviderSimulator, WireRequest
from datamill.pipelines.generate import GenerationBudgetSpent, GenerationModels, GenerationRun

SPEC = parse_spec_yaml("spec:\n  description: A one-line product review\n")
DRAFT = "The phone is fine and the battery lasts a day, which is about what the box promised."
REVISED = "The phone works well, and its battery lasts a full day, just as the box promised it would."
FIXED = "The phone costs 2 + 2 = 4 dollars more than last year's model, which is a fair price for it."
REVISION = "You revise samples of a synthetic dataset."
CALC_FIX = "Correct these calculations"


def _responder(request: WireRequest) -> str:
    if request.wants_json:  # the calculator's list of the sample's arithmetic: one wrong value
        return json.dumps({"calculations": [{"expression": "2 + 2", "stated": "5"}]})
    if request.mentions(CALC_FIX):
        return FIXED
    return REVISED if request.mentions(REVISION) else DRAFT


async def test_cut_revisions_are_never_delivered():
    async with ProviderSimulator(seed=3, responder=_responder) as sim:
        sim.set("truncation", 0.5, when=lambda r: r.mentions(REVISION))
        request = parse_generation_request(
            {
                "generation_model": "sim-openai/gpt",
                "number_of_samples": 6,
                "novelty_threshold": 1,  # every delivered sample is the one scripted revision
                "skip_outline": True,
                "filtering_types": [],
                "revision_types": ["consistency"],
                "max_revision_cycles": 1,
            }
        )
        async with Gateway(Routing.from_dict(sim.routes())) as gateway:
            run = GenerationRun(SPEC, request, GenerationModels.resolve(gateway, request), gateway=gateway)
            result = await run.run()
        cut = [e for e in sim.log if e.behaviour == "truncation"]
    assert cut  # the simulator did cut some revisions
    assert [s.text for s in result.samples] == [REVISED] * 6
    # The gateway asks a cut reply again once (twice the cap): only a revision cut twice fails its candidate.
    assert 0 < result.summary.rejected_by_gate["truncated"] < len(cut)
    assert "cut off at the token limit" in result.summary.reasons["truncated"]


@pytest.mark.parametrize("where", ["draft", "calculator fix"])
async def test_a_cut_draft_or_calculator_fix_rejects_the_candidate_whatever_the_filters(where: str):
    async with ProviderSimulator(seed=3, responder=_responder) as sim:
        if where == "draft":
            sim.set("truncation", 1.0, when=lambda r: not r.wants_json and not r.mentions(CALC_FIX))
        else:
            sim.set("truncation", 1.0, when=lambda r: r.mentions(CALC_FIX))
        request = parse_generation_request(
            {
                "generation_model": "sim-openai/gpt",
                "number_of_samples": 2,
                "skip_outline": True,
                "filtering_types": [],  # no gate asked for: truncation is rejected all the same
                "revision_types": [],
                "tools": ["calculator"],
            }
        )
        async with Gateway(Routing.from_dict(sim.routes())) as gateway:
            run = GenerationRun(SPEC, request, GenerationModels.resolve(gateway, request), gateway=gateway)
            with pytest.raises(GenerationBudgetSpent) as failed:
                await run.run()
    summary = failed.value.summary
    assert summary.delivered == 0
    assert summary.rejected_by_gate == {"truncated": summary.candidates}
