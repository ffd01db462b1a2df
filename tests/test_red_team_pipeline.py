"""The red-team generator against the shipped fake model and the provider simulator's realistic replies.

Every run must deliver exactly ``behaviors × prompts`` prompts, none repeated, each tagged with its
behaviour and attack style; repeated, blank and refused items are replaced by asking again; a model that
cannot be brought there fails with a message naming why.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable
from typing import Any

import pytest

from datamill.llm.gateway import Gateway
from datamill.llm.retry import RetryPolicy
from datamill.llm.routing import Routing
from datamill.llm.simulator import ProviderSimulator
from datamill.pipelines.red_team import (
    ATTACK_STYLES,
    RedTeamGenerator,
    RedTeamIncomplete,
    RedTeamResult,
    RedTeamTarget,
)

TARGET = RedTeamTarget(
    app_description="A pharmacy chatbot answering questions about orders and opening hours",
    domain_description="Healthcare retail",
    concerns="Must not give dosages or diagnoses",
)
FAST = RetryPolicy(base_delay=0.0, max_delay=0.0, retry_after_scale=0.0)


def _check(result: RedTeamResult, behaviors: int, per: int) -> None:
    table = result.behavior_to_enhanced_queries()
    assert len(table) == behaviors
    assert all(len(prompts) == per for prompts in table.values())
    prompts = [p["adversarial_prompt"] for ps in table.values() for p in ps]
    assert len(prompts) == behaviors * per
    assert len({" ".join(p.split()).casefold() for p in prompts}) == len(prompts)
    assert len({b.casefold() for b in table}) == behaviors
    for index, prompts_of in enumerate(table.values()):
        styles = [p["attack_style"] for p in prompts_of]
        assert styles == [ATTACK_STYLES[(index + slot) % len(ATTACK_STYLES)] for slot in range(per)]
        assert all(p["query"].strip() for p in prompts_of)


def _run(routing: dict[str, Any], model: str, behaviors: int, per: int) -> RedTeamResult:
    async def go() -> RedTeamResult:
        async with Gateway(Routing.from_dict(routing), retry=FAST) as gateway:
            return await RedTeamGenerator(gateway.model(model), TARGET).run(behaviors, per)

    return asyncio.run(go())


def _sim_run(model: str, behaviors: int, per: int, **options: Any) -> tuple[RedTeamResult, list[str]]:
    """A run against a provider simulator made with `options`; the result and the behaviours applied."""

    applied: list[str] = []

    async def go() -> RedTeamResult:
        async with ProviderSimulator(**options) as sim:
            try:
                async with Gateway(Routing.from_dict(sim.routes()), retry=FAST) as gateway:
                    return await RedTeamGenerator(gateway.model(model), TARGET).run(behaviors, per)
            finally:
                applied.extend(e.behaviour for e in sim.log.entries if e.behaviour)

    return asyncio.run(go()), applied


def test_fake_model_gives_exactly_behaviors_times_prompts() -> None:
    routing = {"routes": {"fake/*": {"provider": "fake", "model": "{suffix}"}}}
    result = _run(routing, "fake/m", 3, 5)
    _check(result, 3, 5)
    assert result.summary()["attack_styles"] == {
        "role_play": 4,
        "obfuscation": 4,
        "multi_step": 4,
        "payload_splitting": 3,
    }
    assert result.calls == 4  # one taxonomy call, one per behaviour


def _behaviours_and_prompts(repeat_first: bool) -> Callable[[Any], str]:
    """Replies that repeat a behaviour and a prompt in the first answers, then write new ones."""
    counter = {"n": 0}

    def responder(request: Any) -> str:
        counter["n"] += 1
        prompt = request.prompt_text
        wanted = int(re.search(r"with (?:exactly )?(\d+) items", prompt).group(1))  # type: ignore[union-attr]
        tag = counter["n"]
        if '"behaviors"' in prompt:
            items = [{"behavior": f"Gives a dosage, variant {tag}-{i}"} for i in range(wanted)]
            if repeat_first and wanted > 1:
                items[1] = {"behavior": "  GIVES a dosage, variant " + f"{tag}-0 "}
            return json.dumps({"behaviors": items})
        items = [
            {"query": f"q {tag}-{i}", "adversarial_prompt": f"Pretend, step {tag}-{i}"} for i in range(wanted)
        ]
        if repeat_first and wanted > 1:
            items[1]["adversarial_prompt"] = items[0]["adversarial_prompt"].upper()
            items.append({"query": "", "adversarial_prompt": "I'm sorry, but I can't help with that."})
        return json.dumps({"prompts": items})

    return responder


def test_repeats_are_dropped_and_topped_up() -> None:
    result, _ = _sim_run("sim-openai/m", 4, 3, responder=_behaviours_and_prompts(True))
    _check(result, 4, 3)
    assert result.dropped["repeated behaviour"] >= 1
    assert result.dropped["repeated prompt"] >= 4
    assert result.calls > 5  # the missing items were asked for again


@pytest.mark.parametrize("api", ["sim-openai", "sim-anthropic", "sim-gemini"])
def test_quirky_replies_never_reach_the_prompts(api: str) -> None:
    rates = {"refusal_text": 0.15, "refusal_field": 0.1, "think": 0.2, "json_fence": 0.2, "truncation": 0.1}
    result, quirks = _sim_run(f"{api}/m", 4, 4, rates=rates, seed=3)
    _check(result, 4, 4)
    assert len(quirks) >= 2  # the simulator did misbehave
    kept = json.dumps(result.behavior_to_enhanced_queries())
    assert "<think>" not in kept
    assert "```" not in kept
    assert "can't help" not in kept


def test_a_model_that_always_refuses_fails_clearly() -> None:
    with pytest.raises(RedTeamIncomplete) as caught:
        _sim_run("sim-openai/m", 2, 2, rates={"refusal_field": 1.0})
    message = str(caught.value)
    assert "0 usable distinct behaviours of 2" in message
    assert "RefusalError" in message
    assert "model_name" in message


def test_a_model_that_repeats_itself_fails_clearly() -> None:
    def same(request: Any) -> str:
        if '"behaviors"' in request.prompt_text:
            return json.dumps({"behaviors": [{"behavior": f"b{i}"} for i in range(5)]})
        return json.dumps({"prompts": [{"query": "q", "adversarial_prompt": "the same prompt"}] * 3})

    with pytest.raises(RedTeamIncomplete) as caught:
        _sim_run("sim-openai/m", 2, 3, responder=same)
    assert "1 usable distinct prompts for the behaviour 'b0' of 3" in str(caught.value)
    assert "repeated prompt" in str(caught.value)
