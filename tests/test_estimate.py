"""Estimates on the fake model: rows, calls, tokens, money, minutes, wire shape, and estimate vs actual."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import pyarrow as pa
import pytest

from datamill.core import AdaptRequest, LanguageExpansion, parse_adapt_request
from datamill.core.credits import PriceTable, multimodal_credits
from datamill.core.expansion import parse_language_expansion
from datamill.llm.gateway import Gateway, ModelHandle
from datamill.llm.providers.fake import FakeProvider
from datamill.llm.routing import Routing
from datamill.llm.types import ChatRequest, Message, Route, Usage
from datamill.pipelines.adapt import run_adaptation
from datamill.pipelines.checkpoint import Checkpoint
from datamill.pipelines.estimate import (
    FIXED_OVERHEAD_S,
    LOCAL_DECODE_TOKENS_PER_S,
    LOCAL_PREFILL_TOKENS_PER_S,
    Estimate,
    StepEstimate,
    estimate_plan,
    take_sample,
)
from datamill.pipelines.estimate_compare import compare, comparison_markdown
from datamill.pipelines.plan import AdaptPlan, PlanServices, plan_adaptation
from datamill.server.compat.adaption_runs import run_public
from datamill.services.adaptation.launch import Launch
from datamill.steps.base import Row, RowRejected, RowStep, StepContext
from datamill.steps.completion import GenerateCompletion
from datamill.steps.expansion import LanguageExpansionStep
from datamill.steps.grounding import Ground
from datamill.steps.metadata_injection import CONTEXT_INJECTED, MetadataInjection
from datamill.steps.rephrase import Rephrase
from datamill.text.fulltext import LocalFullTextIndex
from datamill.text.langid import FakeLanguageDetector
from datamill.text.search import FakeSearch, Passage
from datamill.text.tokenizer import HeuristicTokenizer, LlamaVocabTokenizer

TOK = HeuristicTokenizer()
RAW = [
    {"q": "how do i reset my password", "a": "Settings > Security.", "product": "Cloud"},
    {"q": "How do I reset my password?", "a": "Go to settings.", "product": "Cloud"},  # exact duplicate
    {"q": "can i export contacts to csv", "a": None, "product": "CRM"},
    {"q": "why is dark mode not saving", "a": "Update the app.", "product": "Mobile"},
]
MAPPING = {"prompt": "q", "completion": "a", "context": ["product"]}


def make_request(**extra: Any) -> AdaptRequest:
    body: dict[str, Any] = {"column_mapping": MAPPING, "brand_controls": {"length": "concise"}}
    body.update(extra)
    return parse_adapt_request(body)


@pytest.fixture
def model() -> ModelHandle:
    return Gateway(Routing.load(), providers={"fake": FakeProvider()}).model("fake/test")


def planned(request: AdaptRequest, model: ModelHandle, raw: list[Row] = RAW) -> tuple[AdaptPlan, list[Row]]:
    plan = plan_adaptation(request, model, total_rows=len(raw))
    return plan, take_sample([pa.RecordBatch.from_pylist(raw)], plan)


class Scripted(RowStep):
    """A model step with fixed requests, for plans built by hand."""

    name: ClassVar[str] = "scripted"

    def __init__(self, model: ModelHandle, *, max_tokens: int = 77, expected: int | None = None) -> None:
        self.model = model
        self.max_tokens = max_tokens
        if expected is not None:
            self.expected_output_tokens = expected

    def requests_for(self, row: Row) -> list[ChatRequest]:
        text = str(row.get("original_prompt") or "")
        return [ChatRequest((Message("user", text),), max_tokens=self.max_tokens)]

    async def process_row(self, row: Row, ctx: StepContext) -> None:
        await self.model.chat(self.requests_for(row)[0], tag=self.name)


class Sized(Scripted):
    """Sizes each row's output itself, which wins over ``expected_output_tokens``."""

    def estimate_output_tokens(self, row: Row) -> int:
        return int(row["_row"])


@dataclass
class Tally:
    rows: int = 0


class Pad(RowStep):
    """A model-free step that lengthens prompts, rejects even rows, and counts what it sees."""

    name: ClassVar[str] = "pad"
    estimate_on_sample = True

    def __init__(self) -> None:
        self.tally = Tally()

    async def process_row(self, row: Row, ctx: StepContext) -> None:
        self.tally.rows += 1
        if row["_row"] % 2 == 0:
            raise RowRejected("even")
        row["original_prompt"] = str(row["original_prompt"]) + " padding" * 40


class Costly(RowStep):
    """A model-free step that must not run for a quote (it would call a paid API or load a model)."""

    name: ClassVar[str] = "costly"

    async def process_row(self, row: Row, ctx: StepContext) -> None:
        raise AssertionError("an estimate ran a step that did not opt in")


class Expand(RowStep):
    """A fan-out step shaped like language expansion: seeded selection, one request per target."""

    name: ClassVar[str] = "language_expansion"

    def __init__(self, model: ModelHandle, expansion: LanguageExpansion) -> None:
        self.model = model
        self.expansion = expansion

    def estimate_requests(self) -> tuple[float, RowStep]:
        everything = Expand(self.model, dataclasses.replace(self.expansion, sample_rate=1.0))
        return self.expansion.sample_rate, everything

    def estimate_rows_out(self, rows_in: int) -> int:
        return self.expansion.expected_output_rows(rows_in)

    def requests_for(self, row: Row) -> list[ChatRequest]:
        if (row["_row"] * 0.13) % 1 >= self.expansion.sample_rate:  # 6 of rows 1-10 at 0.5
            return []
        text = str(row.get("original_prompt") or "")
        return [ChatRequest((Message("user", f"{t}: {text}"),)) for t in self.expansion.languages]

    async def process_row(self, row: Row, ctx: StepContext) -> None:
        raise NotImplementedError


def hand_plan(steps: list[RowStep], rows: int) -> AdaptPlan:
    return AdaptPlan([], steps, rows, rows)


def sample(n: int) -> list[Row]:
    return [{"_row": i, "original_prompt": f"question {i} " * i, "_context": ""} for i in range(1, n + 1)]


async def test_take_sample_numbers_and_maps_the_first_rows(model: ModelHandle) -> None:
    plan = plan_adaptation(make_request(), model, total_rows=4)
    batches = [pa.RecordBatch.from_pylist(RAW[:2]), pa.RecordBatch.from_pylist(RAW[2:])]
    rows = take_sample(batches, plan, limit=3)
    assert [r["_row"] for r in rows] == [1, 2, 3]
    assert rows[2]["original_prompt"] == "can i export contacts to csv"
    assert rows[2]["_context"] == "product: CRM"


async def test_estimate_follows_the_plan_and_measures_dedup_on_the_sample(model: ModelHandle) -> None:
    request = make_request()
    plan, rows = planned(request, model)
    est = await estimate_plan(plan, rows, request=request, tokenizer=TOK)
    assert [s.name for s in est.steps] == [s.name for s in plan.row_steps]
    assert est.rows_in == 4
    assert est.rows_out == 3  # the duplicate is dropped, as the run will
    callers = [s for s in est.steps if s.calls]
    assert [s.name for s in callers] == [s.name for s in plan.row_steps if s.model is not None]
    assert all(s.calls == 3 and s.calls_per_row == 1.0 for s in callers)
    assert est.calls == 3 * len(callers)
    assert any("deduplication: drops 1 of 4 rows in the whole input" in n for n in est.notes)
    assert est.input_tokens == sum(s.input_tokens for s in est.steps)


def rendered_tokens(step: Any, row: Row) -> int:
    return sum(TOK.count_messages(r.messages) for r in step.requests_for(dict(row)))


async def test_near_duplicates_are_measured_after_exact_ones(model: ModelHandle) -> None:
    long_q = "why is the dark mode setting not saving on my phone after restart"
    near = long_q.replace("after", "after a")
    raw = [*RAW, {"q": long_q, "a": None, "product": "Mobile"}, {"q": near, "a": None, "product": "Mobile"}]
    request = make_request()
    plan, rows = planned(request, model, raw)
    est = await estimate_plan(plan, rows, request=request, tokenizer=TOK)
    assert est.rows_out == 4  # 6 rows − 1 exact duplicate − 1 near duplicate
    assert any(n.startswith("near_deduplication: drops 1 of 5 rows in the whole input") for n in est.notes)


async def test_input_tokens_are_the_tokenizer_count_of_the_rendered_requests(model: ModelHandle) -> None:
    recipes = {"deduplication": False, "prompt_metadata_injection": False}
    request = make_request(recipe_specification={"recipes": recipes})
    plan = plan_adaptation(request, model, total_rows=10)  # one sample row stands for ten
    rows = take_sample([pa.RecordBatch.from_pylist(RAW[:1])], plan)
    est = await estimate_plan(plan, rows, request=request, tokenizer=TOK)
    rephrase = next(s for s in plan.row_steps if isinstance(s, Rephrase))
    assert est.steps[0].name == rephrase.name
    assert est.steps[0].input_tokens == 10 * rendered_tokens(rephrase, rows[0])


async def test_an_estimate_releases_the_vocabulary_it_loaded_but_not_a_given_tokenizer(
    model: ModelHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    released: list[str] = []

    class Recording(LlamaVocabTokenizer):
        def count(self, text: str) -> int:
            return HeuristicTokenizer().count(text)

        def release(self) -> None:
            released.append(self.model)

    monkeypatch.setattr("datamill.pipelines.estimate.default_tokenizer", lambda: Recording("own"))
    request = make_request()
    plan, rows = planned(request, model)

    await estimate_plan(plan, rows, request=request, tokenizer=Recording("given"))
    assert released == []
    est = await estimate_plan(plan, rows, request=request)
    assert released == ["own"]
    assert sum(step.input_tokens for step in est.steps) > 0


async def test_later_steps_render_the_injected_prompt(model: ModelHandle) -> None:
    request = make_request(recipe_specification={"recipes": {"deduplication": False}})
    plan = plan_adaptation(request, model, total_rows=1)
    rows = take_sample([pa.RecordBatch.from_pylist(RAW[:1])], plan)
    injection = next(s for s in plan.row_steps if isinstance(s, MetadataInjection))
    rephrase = next(s for s in plan.row_steps if isinstance(s, Rephrase))
    injected = {**rows[0], "enhanced_prompt": injection.inject(rows[0]), CONTEXT_INJECTED: True}
    assert rendered_tokens(rephrase, injected) != rendered_tokens(rephrase, rows[0])
    est = await estimate_plan(plan, rows, request=request, tokenizer=TOK)
    by_name = {s.name: s for s in est.steps}
    assert by_name[injection.name].calls == 0
    assert by_name[rephrase.name].input_tokens == rendered_tokens(rephrase, injected)
    assert "enhanced_prompt" not in rows[0]  # the caller's sample is left as it was


async def test_output_tokens_come_from_the_step_or_its_max_tokens(model: ModelHandle) -> None:
    steps: list[RowStep] = [
        Scripted(model, max_tokens=77),
        Scripted(model, expected=12),
        Sized(model, expected=99),
    ]
    est = await estimate_plan(hand_plan(steps, rows=5), sample(5), request=make_request(), tokenizer=TOK)
    assert [s.output_tokens for s in est.steps] == [5 * 77, 5 * 12, 1 + 2 + 3 + 4 + 5]
    assert est.steps[0].input_tokens == sum(
        TOK.count_messages((Message("user", r["original_prompt"]),)) for r in sample(5)
    )


async def test_model_free_steps_run_on_copies_and_shape_later_requests(model: ModelHandle) -> None:
    pad = Pad()
    plain = await estimate_plan(
        hand_plan([Scripted(model)], 4), sample(4), request=make_request(), tokenizer=TOK
    )
    padded = await estimate_plan(
        hand_plan([pad, Scripted(model)], 4), sample(4), request=make_request(), tokenizer=TOK
    )
    assert padded.steps[0].basis == "none"
    assert padded.steps[0].calls == 0
    assert padded.steps[1].rows == 2  # half the sample was rejected, so half the rows go on
    assert padded.steps[1].input_tokens > plain.steps[0].input_tokens
    assert pad.tally.rows == 0  # the plan's own step saw nothing
    skipped = await estimate_plan(
        hand_plan([Costly(), Scripted(model)], 4), sample(4), request=make_request(), tokenizer=TOK
    )
    assert skipped.steps[1].input_tokens == plain.steps[0].input_tokens


async def test_expansion_multiplies_later_steps_and_bills_output_rows(model: ModelHandle) -> None:
    expansion = parse_language_expansion({"type": "translate", "languages": ["fr", "de"], "sample_rate": 0.5})
    request = make_request(language_expansion=expansion.to_dict())
    plan = hand_plan([Expand(model, expansion), Scripted(model)], rows=10)
    prices = PriceTable(credits_per_row=1.0, minimum_credits=0)
    est = await estimate_plan(plan, sample(10), request=request, tokenizer=TOK, price_table=prices)
    expand, after = est.steps
    assert expand.calls == 10  # 10 rows × 0.5 sampled × 2 targets, whichever rows the sample drew
    assert expand.calls_per_row == 1.0
    assert after.rows == 20  # 10 × (1 + 0.5 × 2)
    assert after.calls == 20
    assert est.rows_out == 20
    assert est.credits == 20.0


async def test_grounding_on_the_local_index_feeds_passages_to_the_completion(
    model: ModelHandle, tmp_path: Path
) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "help.txt").write_text("To reset your password open Settings, then Security. " * 20)
    index = LocalFullTextIndex.build(docs, tmp_path / "index.sqlite")
    request = make_request(brand_controls={"length": "concise", "hallucination_mitigation": True})

    async def completion_input(search: Any) -> tuple[int, Ground]:
        plan = plan_adaptation(request, model, total_rows=len(RAW), services=PlanServices(search=search))
        rows = take_sample([pa.RecordBatch.from_pylist(RAW)], plan)
        est = await estimate_plan(plan, rows, request=request, tokenizer=TOK)
        ground = next(s for s in plan.row_steps if isinstance(s, Ground))
        return next(s.input_tokens for s in est.steps if s.name == GenerateCompletion.name), ground

    try:
        grounded, ground = await completion_input(index)
        skipped, _ = await completion_input(FakeSearch([Passage("x", "never asked for " * 50, 1.0)]))
    finally:
        index.close()
    assert grounded > skipped  # the passages found for the sample are in the completion prompts
    assert ground.counts.grounded == 0  # the run's own counters saw nothing


async def test_requested_expansion_without_a_step_is_flagged(model: ModelHandle) -> None:
    plan, rows = planned(make_request(), model)
    request = make_request(language_expansion={"type": "translate", "languages": ["fr"], "sample_rate": 0.5})
    est = await estimate_plan(plan, rows, request=request, tokenizer=TOK)
    assert any("no expansion step" in n for n in est.notes)
    assert est.rows_out == 3


async def test_planned_language_expansion(model: ModelHandle) -> None:
    expansion = {"type": "translate", "languages": ["fr", "de"], "sample_rate": 0.5}
    request = make_request(language_expansion=expansion)
    services = PlanServices(detector=FakeLanguageDetector())
    plan = plan_adaptation(request, model, total_rows=len(RAW), services=services)
    rows = take_sample([pa.RecordBatch.from_pylist(RAW)], plan)
    est = await estimate_plan(plan, rows, request=request, tokenizer=TOK)
    by_name = {s.name: s for s in est.steps}
    assert by_name[LanguageExpansionStep.name].calls == 3  # 3 rows after dedup × 0.5 × 2 targets
    assert by_name[GenerateCompletion.name].rows == 6
    assert est.rows_out == 6


def _wire(estimate: Estimate) -> dict[str, Any]:
    """The run/adapt response of an estimate, as the server sends it."""
    public = run_public(Launch.of(estimate.to_dict(), None))
    return public.model_dump(mode="json", by_alias=True, exclude_unset=True)


async def test_text_only_wire_response(model: ModelHandle) -> None:
    request = make_request()
    plan, rows = planned(request, model)
    wire = _wire(await estimate_plan(plan, rows, request=request, tokenizer=TOK))
    assert wire["run_id"] is None
    assert wire["estimate"] is True
    assert wire["multimodalPricingApplied"] is False
    assert "creditMultiplier" not in wire
    assert wire["estimatedCreditsConsumed"] == 1.0  # 3 rows on a free model: the minimum charge
    assert wire["estimatedMinutes"] == round(FIXED_OVERHEAD_S / 60, 2)  # the fake model takes no time


async def test_multimodal_wire_response(model: ModelHandle) -> None:
    raw = [{**row, "img": f"https://x/{i}.png"} for i, row in enumerate(RAW)]
    request = make_request(column_mapping={**MAPPING, "image": "img"})
    plan, rows = planned(request, model, raw)
    est = await estimate_plan(plan, rows, request=request, tokenizer=TOK)
    assert est.multimodal_pricing_applied
    assert est.credits == multimodal_credits(est.rows_out) == 10
    wire = _wire(est)
    assert wire["multimodalPricingApplied"] is True
    assert wire["creditMultiplier"] == 10


async def test_cost_and_minutes_follow_the_route(model: ModelHandle) -> None:
    route = Route(name="acme/m", provider="openai", model="m", input_price=1.0, output_price=2.0)
    plan = hand_plan([Scripted(model)], rows=8)
    est = await estimate_plan(
        plan,
        sample(8),
        request=make_request(),
        tokenizer=TOK,
        route_prices=route,
        concurrency=2,
        latency_s=3.0,
    )
    step = est.steps[0]
    assert step.model == "acme/m"
    assert est.cost_usd == pytest.approx((step.input_tokens * 1.0 + step.output_tokens * 2.0) / 1e6)
    assert step.seconds == pytest.approx(8 * 3.0 / 2)
    assert est.minutes == pytest.approx((8 * 3.0 / 2 + FIXED_OVERHEAD_S) / 60)
    assert est.credits == PriceTable().credits(8, est.cost_usd)


async def test_local_model_time_is_its_token_throughput(model: ModelHandle) -> None:
    route = Route(name="local/x", provider="local", model="bundled:smollm2")
    est = await estimate_plan(
        hand_plan([Scripted(model)], rows=3),
        sample(3),
        request=make_request(),
        tokenizer=TOK,
        route_prices=route,
    )
    step = est.steps[0]
    expected = step.input_tokens / LOCAL_PREFILL_TOKENS_PER_S + step.output_tokens / LOCAL_DECODE_TOKENS_PER_S
    assert step.seconds == pytest.approx(expected)


async def test_thinking_routes_add_the_thinking_budget(model: ModelHandle) -> None:
    route = Route(name="acme/t", provider="openai", model="t", thinking=True, default_thinking_budget=500)
    est = await estimate_plan(
        hand_plan([Scripted(model)], rows=4),
        sample(4),
        request=make_request(),
        tokenizer=TOK,
        route_prices=route,
    )
    assert est.thinking_tokens == 4 * 500
    assert est.total_tokens == est.input_tokens + est.output_tokens + 2000


async def test_empty_input_and_missing_sample(model: ModelHandle) -> None:
    request = make_request()
    empty = await estimate_plan(
        plan_adaptation(request, model, total_rows=0), [], request=request, tokenizer=TOK
    )
    assert (empty.rows_out, empty.calls, empty.credits) == (0, 0, 0.0)
    with pytest.raises(ValueError, match="no sample rows"):
        await estimate_plan(plan_adaptation(request, model, total_rows=5), [], request=request, tokenizer=TOK)


def fixed_estimate(**changes: Any) -> Estimate:
    est = Estimate(
        steps=[],
        rows_in=10,
        rows_out=10,
        calls=20,
        input_tokens=1100,
        output_tokens=500,
        cost_usd=0.0,
        credits=1.0,
        minutes=1.0,
        multimodal_pricing_applied=False,
        credit_multiplier=None,
    )
    return dataclasses.replace(est, **changes)


def test_compare_gives_signed_relative_errors() -> None:
    actual = {"calls": 20, "input_tokens": 1000, "output_tokens": 0, "cost_usd": 0.0, "rows_out": 8}
    result = compare(fixed_estimate(), actual)
    assert result["input_tokens"] == {"estimated": 1100, "actual": 1000, "error": pytest.approx(0.1)}
    assert result["calls"]["error"] == 0.0
    assert result["output_tokens"]["error"] is None  # nothing to divide by
    assert result["rows_out"]["error"] == pytest.approx(0.25)
    assert compare(fixed_estimate(output_tokens=0), actual)["output_tokens"]["error"] == 0.0


def test_compare_counts_cache_hits_as_calls_and_says_so() -> None:
    result = compare(
        fixed_estimate(), {"calls": 15, "cache_hits": 5, "input_tokens": 800, "output_tokens": 400}
    )
    assert result["calls"]["actual"] == 20
    assert result["cache_hits"] == 5
    assert any("cache" in n for n in result["notes"])


def test_compare_is_like_for_like_when_usage_comes_by_step() -> None:
    est = fixed_estimate(steps=[StepEstimate("completion", 1.0, 1100, 500, 20)], cached_input_tokens=800)
    step = {
        "requests": 20,
        "calls": 20,
        "input_tokens": 1000,
        "cached_input_tokens": 900,
        "output_tokens": 500,
        "cost_usd": 0.01,
    }
    judge = {"requests": 8, "calls": 8, "input_tokens": 4000, "output_tokens": 80, "cost_usd": 0.02}
    snapshot = {"total": {"calls": 28}, "by_tag": {"completion": step, "evaluation": judge}}
    result = compare(est, snapshot)
    assert result["input_tokens"]["actual"] == 1000
    assert result["cached_input_tokens"] == {"estimated": 800, "actual": 900, "error": pytest.approx(-1 / 9)}
    assert result["calls"]["error"] == 0.0
    assert result["cost_usd"]["actual"] == pytest.approx(0.01)
    assert result["steps"]["completion"]["input_tokens"]["error"] == pytest.approx(0.1)
    assert set(result["unestimated"]) == {"evaluation"}
    assert any("evaluation" in n for n in result["notes"])


async def test_estimate_matches_a_fake_run_and_compares_with_its_ledger(
    model: ModelHandle, tmp_path: Path
) -> None:
    request = make_request()
    plan, rows = planned(request, model)
    est = await estimate_plan(plan, rows, request=request, tokenizer=TOK)
    run_plan = plan_adaptation(request, model, total_rows=len(RAW))
    result = await run_adaptation(
        [pa.RecordBatch.from_pylist(RAW)], run_plan, Checkpoint(tmp_path / "run", "fp")
    )
    cmp = compare(est, model.gateway.usage, rows_out=result.rows_out)
    assert cmp["calls"] == {"estimated": 6, "actual": 6, "error": 0.0}
    assert cmp["rows_out"]["error"] == 0.0
    assert set(cmp["steps"]) == {s.name for s in plan.row_steps}
    assert all(s["calls"]["error"] == 0.0 for s in cmp["steps"].values())
    assert cmp["input_tokens"]["actual"] > 0
    assert "| calls | 6 | 6 | +0.0% |" in comparison_markdown(cmp)


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
async def test_a_cacheable_prefix_and_the_batch_discount_are_priced(
    model: ModelHandle, provider: str
) -> None:
    blueprint = "Answer as a careful support engineer who cites the product manual. " * 300
    step = GenerateCompletion(model, blueprint=blueprint)
    route = Routing.from_dict(
        {
            "routes": {
                "acme/m": {
                    "provider": provider,
                    "input_price": 3.0,
                    "output_price": 15.0,
                    "api_key_env": None,
                }
            }
        }
    ).resolve("acme/m")
    rows = sample(10)
    prefix = TOK.count_messages(step.requests_for(rows[0])[0].messages[:1])
    assert prefix >= 4096
    kwargs: dict[str, Any] = {
        "request": make_request(),
        "tokenizer": TOK,
        "route_prices": route,
        "concurrency": 4,
    }
    est = await estimate_plan(hand_plan([step], rows=100), rows, **kwargs)
    (completion,) = est.steps
    # The first 4 calls (as many as run at once) find nothing cached; the other 96 read the prefix.
    assert completion.cached_input_tokens == est.cached_input_tokens == pytest.approx(96 * prefix, abs=2)
    writes = 4 * prefix if provider == "anthropic" else 0
    assert completion.cache_write_tokens == pytest.approx(writes, abs=2)
    uncached = completion.input_tokens - completion.cached_input_tokens - completion.cache_write_tokens
    expected = (
        uncached * 3.0
        + completion.cached_input_tokens * 0.3
        + completion.cache_write_tokens * (3.75 if provider == "anthropic" else 3.0)
        + completion.output_tokens * 15.0
    ) / 1e6
    assert est.cost_usd == pytest.approx(expected)
    assert est.cost_usd < 0.5 * route.cost(Usage(completion.input_tokens, completion.output_tokens))
    batched = await estimate_plan(hand_plan([step], rows=100), rows, batched=True, **kwargs)
    assert batched.batched
    assert batched.cost_usd == pytest.approx(est.cost_usd * 0.5)
