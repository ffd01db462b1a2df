"""The judging protocol: described levels, rationale first, both orders with ties, length control."""

from __future__ import annotations

import json
import random

import pytest

from datamill.core.errors import ConfigError
from datamill.llm.gateway import Gateway
from datamill.llm.judge_choice import choose_judge, judge_handle, model_family
from datamill.llm.providers.fake import FakeProvider
from datamill.llm.routing import Routing
from datamill.llm.types import ChatRequest, Route
from datamill.steps.judging import (
    PAIR_SCHEMA,
    Comparison,
    Criterion,
    OrderVerdict,
    PairwiseJudge,
    criteria_text,
    length_controlled_win_rate,
    scores_schema,
    to_ten,
)

CLARITY = Criterion(
    "clarity", "Is it clear?", ("unreadable", "mostly unclear", "understandable", "clear", "crystal clear")
)


def test_every_level_is_described_and_the_rationale_comes_first():
    text = criteria_text([CLARITY])
    assert text.splitlines() == [
        "clarity: Is it clear?",
        "  1 = unreadable",
        "  2 = mostly unclear",
        "  3 = understandable",
        "  4 = clear",
        "  5 = crystal clear",
    ]
    schema = scores_schema([CLARITY])
    assert list(schema["properties"]) == ["rationale", "scores"]
    assert schema["required"] == ["rationale", "scores"]
    assert list(PAIR_SCHEMA["properties"]) == ["rationale", "verdict"]
    with pytest.raises(ValueError, match="must describe 5 levels"):
        Criterion("short", "?", ("bad", "good"))
    assert [to_ten(s) for s in (1, 2, 3, 4, 5)] == [0.0, 2.5, 5.0, 7.5, 10.0]


def _comparison(x_first: str, y_first: str) -> Comparison:
    return Comparison(OrderVerdict(x_first, "x first"), OrderVerdict(y_first, "y first"))


@pytest.mark.parametrize(
    ("x_first", "y_first", "margin", "consistent", "winner"),
    [
        ("A>>B", "B>>A", 2.0, True, "x"),
        ("A>B", "B>A", 1.0, True, "x"),
        ("A>B", "A=B", 0.5, True, "x"),
        ("A=B", "A=B", 0.0, True, "tie"),
        ("B>A", "A>B", -1.0, True, "y"),
        # The judge preferred whichever answer it saw first: no preference at all.
        ("A>B", "A>B", 0.0, False, "tie"),
        ("A>>B", "A>B", 0.5, False, "tie"),
    ],
)
def test_both_orders_combine_into_a_margin_and_disagreeing_orders_are_inconsistent(
    x_first, y_first, margin, consistent, winner
):
    comparison = _comparison(x_first, y_first)
    assert comparison.margin == margin
    assert comparison.consistent is consistent
    assert comparison.winner == winner
    assert comparison.flipped().margin == -margin


async def test_the_pairwise_judge_asks_both_orders_and_shows_the_lengths():
    seen: list[str] = []

    def first_wins(route: Route, request: ChatRequest) -> str:
        seen.append(request.messages[-1].content)
        return json.dumps({"rationale": "A reads better.", "verdict": "A>B"})

    fake = FakeProvider(responder=first_wins)
    async with Gateway(Routing.load(), providers={"fake": fake}) as gateway:
        judge = PairwiseJudge(gateway.model("fake/judge"), tag="test")
        comparison = await judge.compare("Name a colour.", "", "Red.", "Blue is a colour of the sky.")
    assert len(fake.calls) == 2
    assert seen[0].index("Red.") < seen[0].index("Blue is")
    assert seen[1].index("Blue is") < seen[1].index("Red.")
    assert "(about 1 tokens)" in seen[0]
    assert "(about 7 tokens)" in seen[0]
    assert not comparison.consistent
    assert comparison.winner == "tie"
    system = fake.calls[0].messages[0].content
    assert "Length is no merit" in system
    assert all(call.temperature == 0.0 for call in fake.calls)


def test_a_length_target_is_stated_instead_of_ignoring_length():
    gateway = Gateway(Routing.load(), providers={"fake": FakeProvider()})
    judge = PairwiseJudge(gateway.model("fake/judge"), tag="test", length_range=(40, 150))
    system = judge.request("Q", "", "a", "b").messages[0].content
    assert "40 to 150 tokens" in system


def test_the_length_controlled_win_rate_removes_a_win_rate_bought_with_length():
    rng = random.Random(3)
    outcomes, deltas = [], []
    for _ in range(400):
        delta = rng.choice([-300, -100, 100, 300])
        # Wins only when longer: the raw win rate is half, entirely explained by length.
        longer_wins = 0.9 if delta > 0 else 0.1
        outcomes.append(1.0 if rng.random() < longer_wins else 0.0)
        deltas.append(delta)
    # Make the compared side usually the longer one: a raw win rate well above one half.
    skewed = [(o, d) for o, d in zip(outcomes, deltas, strict=True) if d > 0 or rng.random() < 0.25]
    rate = length_controlled_win_rate([o for o, _ in skewed], [d for _, d in skewed])
    assert rate.raw is not None
    assert rate.raw > 0.65
    assert rate.length_controlled is not None
    assert abs(rate.length_controlled - 0.5) < 0.1
    assert rate.length_coefficient is not None
    assert rate.length_coefficient > 1
    few = length_controlled_win_rate([1, 0, 0.5], [10, -5, 0])
    assert few.raw == 0.5
    assert few.length_controlled is None
    assert length_controlled_win_rate([], []).raw is None


ROUTES = {
    "default_model": "openai/gpt-4o-mini",
    "judge_models": ["openai/gpt-4.1", "anthropic/claude-sonnet-4-5", "gemini/gemini-2.5-pro"],
    "routes": {
        "openai/*": {"provider": "fake", "api_key_env": "OPENAI_API_KEY"},
        "anthropic/*": {"provider": "fake", "api_key_env": "ANTHROPIC_API_KEY"},
        "gemini/*": {"provider": "fake", "api_key_env": "GEMINI_API_KEY"},
    },
}


def test_model_families_are_read_from_the_name():
    assert model_family("anthropic/claude-haiku-4-5") == "anthropic"
    assert model_family("sim-anthropic/claude") == "anthropic"
    assert model_family("openai/gpt-4o-mini") == "openai"
    assert model_family("deepseek-ai/DeepSeek-V3") == "deepseek"
    assert model_family("ollama/llama3.1:8b") == "meta"
    assert model_family("acme/model-x") == "acme"


def test_the_judge_defaults_to_a_usable_model_of_another_family():
    keys = {"OPENAI_API_KEY": "k", "GEMINI_API_KEY": "k"}
    gateway = Gateway(Routing.from_dict(ROUTES, environ=keys), providers={"fake": FakeProvider()})
    choice = choose_judge(gateway, "openai/gpt-4o-mini")
    # gpt-4.1 is the generator's family and Claude has no key: Gemini judges.
    assert choice.model == "gemini/gemini-2.5-pro"
    assert choice.to_dict()["same_family_as_generator"] is False
    assert "another family" in choice.note()
    named = choose_judge(gateway, "openai/gpt-4o-mini", "openai/gpt-4.1")
    assert named.model == "openai/gpt-4.1"
    assert named.same_family
    assert not named.same_model
    assert "generator's family" in named.note()

    alone = Gateway(
        Routing.from_dict(ROUTES, environ={"OPENAI_API_KEY": "k"}), providers={"fake": FakeProvider()}
    )
    own = choose_judge(alone, "openai/gpt-4o-mini")
    assert own.model == "openai/gpt-4o-mini"
    assert own.same_model
    assert "the model that generated the data" in own.note()
    generator = alone.model("openai/gpt-4o-mini")
    assert judge_handle(alone, generator) is generator


def test_judge_models_must_name_configured_routes():
    with pytest.raises(ConfigError, match="judge_models: 'nope/x' matches no route"):
        Routing.from_dict({**ROUTES, "judge_models": ["nope/x"]})
    with pytest.raises(ConfigError, match="judge_models must be a list"):
        Routing.from_dict({**ROUTES, "judge_models": "openai/gpt-4.1"})


async def test_a_run_is_judged_by_the_configured_model_of_another_family_and_the_report_says_so(
    tmp_path,
):
    import orjson

    from datamill.core.run_options import RunOptions
    from datamill.services.adaptation.adapt import AdaptJob, adapt_file_async, report_paths
    from datamill.services.settings.entry import Settings

    source = tmp_path / "in.csv"
    source.write_text("question\nhow do tides work\nwhy is the sky blue\nwhat makes bread rise\n")
    routes = tmp_path / "routes.yaml"
    routes.write_text(
        "judge_models: [acme/writer-large, otherco/judge]\n"
        "routes:\n  acme/*: {provider: fake}\n  otherco/*: {provider: fake}\n"
    )
    judged_by: set[str] = set()

    def responder(route: Route, request: ChatRequest) -> str:
        if request.json_schema is not None:
            judged_by.add(route.model)
        from datamill.llm.providers.fake import default_reply

        return default_reply(request)

    out = tmp_path / "out.jsonl"
    job = AdaptJob(source, out, model="acme/writer", options=RunOptions(eval_sample_size=3))
    body = {"column_mapping": {"prompt": "question"}, "recipe_specification": {"recipes": {}}}
    fake = FakeProvider(responder=responder)
    async with Gateway(Routing.load(routes), providers={"fake": fake}) as gateway:
        summary = await adapt_file_async(
            job, body, settings=Settings(data_dir=tmp_path / "home"), gateway=gateway
        )
    assert summary.quality is not None
    # acme/writer-large is the generator's family (by its vendor prefix): the next one judges.
    assert judged_by == {"judge"}
    evaluation = orjson.loads(report_paths(out)[0].read_bytes())
    choice = evaluation["raw_results"]["judge"]["choice"]
    assert choice["model"] == "otherco/judge"
    assert choice["chosen_as"] == "another family"
    assert choice["same_family_as_generator"] is False
    assert "of another family than the generator acme/writer" in report_paths(out)[1].read_text()
