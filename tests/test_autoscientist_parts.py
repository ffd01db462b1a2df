"""The AutoScientist loop's parts that need no model: the split, the win rate and its interval, the search,
the request checks, the pairwise judge's scoring (through the model gateway and the fake provider)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from datamill.core.errors import ValidationError
from datamill.pipelines.autoscientist.examples import example_of, split_examples
from datamill.pipelines.autoscientist.search import Tried, next_params
from datamill.pipelines.autoscientist.win_rate import summarise, wilson
from datamill.services.autoscientist.request import parse_create

START = {
    "learning_rate": 2e-4,
    "n_epochs": 3,
    "lora_r": 16,
    "lora_alpha": 32,
    "training_method": "instruction",
}


def test_wilson_matches_the_textbook_values() -> None:
    low, high = wilson(8, 10)  # 8 of 10: the classic example
    assert (round(low, 4), round(high, 4)) == (0.4902, 0.9433)
    assert wilson(0, 0) == (0.0, 1.0)
    low, high = wilson(10, 10)
    assert high == pytest.approx(1.0)
    assert 0.72 < low < 0.73


def test_ties_count_half_and_unjudged_prompts_are_left_out() -> None:
    rate = summarise([1.0, 0.5, 0.0, 0.75, None])
    assert (rate.wins, rate.losses, rate.ties, rate.judged, rate.failed) == (2, 1, 1, 4, 1)
    assert rate.win_rate == pytest.approx(2.25 / 4)
    assert rate.low < rate.win_rate < rate.high


def test_rows_become_examples_through_the_mapping_or_the_enhanced_columns() -> None:
    mapping = {"prompt": "q", "completion": "a"}
    assert example_of({"q": " Why? ", "a": "Because."}, mapping).prompt == "Why?"
    adapted = {"original_prompt": "p0", "enhanced_prompt": "p1", "original_completion": "c0"}
    found = example_of(adapted, None)
    assert (found.prompt, found.completion) == ("p1", "c0")  # the original where nothing was enhanced


def test_the_split_is_fixed_holds_out_a_fifth_and_skips_unusable_rows() -> None:
    rows = [{"q": f"q{i}", "a": f"a{i}" if i % 5 else ""} for i in range(25)]
    first = split_examples(rows, {"prompt": "q", "completion": "a"}, "sft")
    again = split_examples(rows, {"prompt": "q", "completion": "a"}, "sft")
    assert first == again
    assert (len(first.train), len(first.held_out), first.skipped) == (16, 4, 5)
    assert not {e.prompt for e in first.train} & {e.prompt for e in first.held_out}
    with pytest.raises(ValidationError, match="needs at least 4"):
        split_examples(rows[:3], {"prompt": "q", "completion": "a"}, "sft")
    with pytest.raises(ValidationError, match="chosen and a rejected"):
        split_examples(rows, {"prompt": "q", "completion": "a"}, "dpo")


def test_the_search_starts_with_the_recommendation_then_moves_from_the_best() -> None:
    assert next_params(START, [], ()) == (None, START, None)
    history = [Tried(None, START, 0.5, None)]
    move, params, base = next_params(START, history, ()) or (None, {}, None)
    assert (move, params["learning_rate"], base) == ("lr_up", 4e-4, 0)
    history.append(Tried("lr_up", params, 0.7, 0))  # it helped: the same move again, from the new best
    move, params, base = next_params(START, history, ()) or (None, {}, None)
    assert (move, params["learning_rate"], base) == ("lr_up", 8e-4, 1)
    history.append(Tried("lr_up", params, 0.6, 1))  # it did not: the next move from the best
    move, params, base = next_params(START, history, ()) or (None, {}, None)
    assert (move, params["n_epochs"], params["learning_rate"], base) == ("epochs", 4, 4e-4, 1)


def test_the_search_leaves_fixed_hyperparameters_alone_and_can_run_out() -> None:
    history = [Tried(None, START, 0.5, None)]
    found = next_params(START, history, {"learning_rate"})
    assert found is not None
    assert found[0] == "epochs"
    assert next_params(START, history, {"learning_rate", "n_epochs", "lora_r"}) is None
    found = next_params(START, history, {"learning_rate", "n_epochs"})
    assert found is not None
    assert found[0] == "rank_up"
    assert (found[1]["lora_r"], found[1]["lora_alpha"]) == (32, 64)  # alpha keeps its ratio to the rank


def test_a_create_body_is_checked_field_by_field() -> None:
    request = parse_create({"dataset_id": "ds_1", "max_iterations": 2.0, "hyperparams": {"lora_r": 8}})
    assert (request.max_iterations, request.hyperparams, request.data_format) == (2, {"lora_r": 8}, "chat")
    with pytest.raises(ValidationError) as caught:
        parse_create({"max_iterations": True, "hyperparams": {"learning_rate": "fast"}, "data_format": "xml"})
    assert [i.field for i in caught.value.issues] == [
        "dataset_id",
        "data_format",
        "hyperparams.learning_rate",
        "max_iterations",
    ]


def test_the_pairwise_judge_scores_both_orders_through_the_gateway(tmp_path: Any) -> None:
    from datamill.llm.gateway import Gateway
    from datamill.llm.routing import Routing
    from datamill.llm.simulator import ProviderSimulator
    from datamill.pipelines.autoscientist.judging import PairwiseJudge

    def prefer_a(request: Any) -> str:  # a judge with a position bias: always the first answer
        return json.dumps({"reason": "first", "better": "A"})

    async def main() -> list[Any]:
        async with ProviderSimulator(seed=1, responder=prefer_a) as sim:
            gateway = Gateway(Routing.from_dict(sim.routes()))
            try:
                judge = PairwiseJudge(gateway.model("sim-openai/gpt"))
                found = await judge.judge_all(["q1", "q2"], ["r1", ""], ["tuned", "same"], ["base", "same"])
            finally:
                await gateway.aclose()
            assert len(sim.log) == 2  # identical answers need no call
            return found

    biased, identical = asyncio.run(main())
    assert biased.score == 0.5  # a verdict that follows the position: a tie
    assert biased.verdicts == ("A", "A")
    assert identical.score == 0.5
    assert identical.verdicts == ("same", "same")
