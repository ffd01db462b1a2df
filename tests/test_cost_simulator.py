"""Cost is what the provider bills, checked against the provider simulator's own bill: prompt-cache reads
and writes, replies cut mid-body or never answered in time, and the steps' cacheable prompts, on the OpenAI,
Anthropic and Gemini wire formats."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from datamill.llm.gateway import Gateway
from datamill.llm.retry import RetryPolicy
from datamill.llm.routing import Routing
from datamill.llm.simulator import ProviderSimulator
from datamill.llm.types import ChatRequest, Message, Route, Usage
from datamill.llm.usage import UsageTotals
from datamill.steps.base import StepContext
from datamill.steps.completion import GenerateCompletion

MODELS = ["sim-openai/gpt", "sim-anthropic/claude", "sim-gemini/pro"]
PRICES = {"input_price": 3.0, "output_price": 15.0}
#: A blueprint long enough for every provider's cache minimum (1,024 tokens).
BLUEPRINT = " ".join(
    f"Rule {i}: answer plainly, cite the product, and keep every number exact." for i in range(90)
)
FAST = RetryPolicy(base_delay=0.001, max_delay=0.01, max_attempts=8)


@pytest.fixture
async def sim() -> AsyncIterator[ProviderSimulator]:
    async with ProviderSimulator(seed=3) as simulator:
        yield simulator


def _gateway(sim: ProviderSimulator, **fields: Any) -> Gateway:
    return Gateway(Routing.from_dict(sim.routes(**PRICES, **fields)), retry=FAST)


def _billed_usd(sim: ProviderSimulator, route: Route) -> float:
    return sim.log.billed().cost_usd(
        route.input_price,
        route.output_price,
        cached_input_price=route.cached_input_price,
        cache_write_price=route.cache_write_price,
    )


def _assert_tokens_match(totals: UsageTotals, sim: ProviderSimulator) -> None:
    billed = sim.log.billed()
    usage = totals.usage
    assert usage.input_tokens == billed.input_tokens
    assert usage.cached_input_tokens == billed.cached_input_tokens
    assert usage.cache_write_tokens == billed.cache_write_tokens
    assert usage.output_tokens + usage.thinking_tokens == billed.output_tokens + billed.reasoning_tokens


@pytest.mark.parametrize("model", MODELS)
async def test_a_steps_cached_prefix_is_billed_and_reported_alike(sim: ProviderSimulator, model: str) -> None:
    rows = [{"_row": i, "original_prompt": f"Question {i}: how do I export my data?"} for i in range(6)]
    async with _gateway(sim) as gateway:
        handle = gateway.model(model)
        step = GenerateCompletion(handle, blueprint=BLUEPRINT)
        for row in rows:
            await step.process_row(row, StepContext())
        totals = gateway.usage.total
        route = handle.route
    _assert_tokens_match(totals, sim)
    billed = sim.log.billed()
    assert billed.cached_input_tokens > 0.6 * billed.input_tokens  # the blueprint is read from the cache
    if model.startswith("sim-anthropic"):
        assert billed.cache_write_tokens > 0  # written once, by the first request
        assert "cache_control" in str(sim.log.entries[0].body["system"])
    assert totals.cost_usd == pytest.approx(_billed_usd(sim, route), rel=1e-9)
    uncached = route.cost(Usage(billed.input_tokens, billed.output_tokens))
    assert totals.cost_usd < 0.6 * uncached


@pytest.mark.parametrize("model", MODELS)
async def test_replies_cut_mid_body_are_billed_as_the_provider_bills_them(
    sim: ProviderSimulator, model: str
) -> None:
    sim.set("reset", 0.4)
    requests = [ChatRequest((Message("user", f"Name river number {i}."),), max_tokens=50) for i in range(20)]
    async with _gateway(sim) as gateway:
        for request in requests:
            await gateway.chat(model, request, tag="rivers")
        totals = gateway.usage.by_tag["rivers"]
        route = gateway.routing.resolve(model)
    resets = len(sim.log.with_behaviour("reset"))
    assert resets > 0
    assert totals.unread == resets
    assert totals.calls == len(requests)
    _assert_tokens_match(totals, sim)
    assert totals.cost_usd == pytest.approx(_billed_usd(sim, route), rel=1e-9)


async def test_a_reply_past_its_deadline_is_billed_as_the_provider_bills_it(sim: ProviderSimulator) -> None:
    sim.slow_first_byte_s = 0.5
    sim.set("slow_first_byte", 0.5)
    requests = [ChatRequest((Message("user", f"Name lake number {i}."),), max_tokens=50) for i in range(8)]
    async with _gateway(sim, timeout_s=0.2) as gateway:
        for request in requests:
            await gateway.chat("sim-openai/gpt", request)
        totals = gateway.usage.total
        route = gateway.routing.resolve("sim-openai/gpt")
    slow = len(sim.log.with_behaviour("slow_first_byte"))
    assert slow > 0
    assert totals.unread == slow
    _assert_tokens_match(totals, sim)
    assert totals.cost_usd == pytest.approx(_billed_usd(sim, route), rel=1e-9)


async def test_error_answers_cost_nothing(sim: ProviderSimulator) -> None:
    sim.set("server_error", 0.5)
    requests = [ChatRequest((Message("user", f"Name hill number {i}."),), max_tokens=50) for i in range(10)]
    async with _gateway(sim) as gateway:
        for request in requests:
            await gateway.chat("sim-anthropic/claude", request)
        totals = gateway.usage.total
        route = gateway.routing.resolve("sim-anthropic/claude")
    assert sim.log.with_behaviour("server_error")
    assert totals.unread == 0
    _assert_tokens_match(totals, sim)
    assert totals.cost_usd == pytest.approx(_billed_usd(sim, route), rel=1e-9)


def test_the_cli_summary_shows_the_tokens_read_from_the_prompt_cache(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from datamill.cli.main import cli
    from datamill.llm.simulator import serve_in_thread

    source = tmp_path / "in.csv"
    source.write_text("question\n" + "".join(f"how do i export report {i}\n" for i in range(4)))
    with serve_in_thread(seed=1) as simulator:
        routes = simulator.write_routes(tmp_path / "routes.yaml", **PRICES)
        argv = [
            "adapt",
            str(source),
            "--prompt",
            "question",
            "--model",
            "sim-openai/gpt",
            "--routes",
            str(routes),
        ]
        argv += [
            "--blueprint",
            BLUEPRINT,
            "--recipes",
            "none",
            "--no-eval",
            "--no-cache",
            "-o",
            str(tmp_path / "o.jsonl"),
        ]
        env = {"DATAMILL_HOME": str(tmp_path / "home"), "DATAMILL_ROUTES": None, "DATAMILL_MODEL": None}
        result = CliRunner().invoke(cli, argv, env=env)
        cached = simulator.log.billed().cached_input_tokens
    assert result.exit_code == 0, result.output
    assert cached > 0
    assert f"{cached:,} from the prompt cache" in result.output
