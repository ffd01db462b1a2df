"""Batch mode against the provider simulator: each provider's batch wire format, answers equal to online
ones, the batch price, rows a batch does not answer retried online, and a journal that resumes batches in
flight without submitting them again."""

from __future__ import annotations

import asyncio
import dataclasses
import math
import sqlite3
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from datamill.core.errors import ConfigError
from datamill.llm.gateway import Gateway
from datamill.llm.retry import RetryPolicy
from datamill.llm.routing import Routing
from datamill.llm.simulator import ProviderSimulator, WireRequest
from datamill.llm.types import ChatRequest, Message

MODELS = ["sim-openai/gpt", "sim-anthropic/claude", "sim-gemini/pro"]
PRICES = {"input_price": 3.0, "output_price": 15.0}
FAST = RetryPolicy(base_delay=0.001, max_delay=0.01, max_attempts=8)
SCHEMA = {
    "type": "object",
    "properties": {"answer": {"type": "string"}},
    "required": ["answer"],
    "additionalProperties": False,
}


@pytest.fixture
async def sim() -> AsyncIterator[ProviderSimulator]:
    async with ProviderSimulator(seed=5, batch_delay_s=0.2) as simulator:
        yield simulator


def _gateway(sim: ProviderSimulator, *, batch: bool = True, **fields: Any) -> Gateway:
    routing = Routing.from_dict(sim.routes(**PRICES, batch_poll_s=0.05, **fields))
    gateway = Gateway(routing, retry=FAST, batch=batch)
    return gateway


def _requests(n: int) -> list[ChatRequest]:
    return [
        ChatRequest((Message("system", "Answer briefly."), Message("user", f"Question {i}: name a river.")))
        for i in range(n)
    ]


def _first_time(*texts: str) -> Callable[[WireRequest], bool]:
    """A behaviour predicate that holds for the first request mentioning each of ``texts``, once."""
    left = set(texts)

    def when(request: WireRequest) -> bool:
        hit = next((t for t in left if request.mentions(t)), None)
        if hit is None:
            return False
        left.discard(hit)
        return True

    return when


async def _ask(gateway: Gateway, model: str, requests: list[ChatRequest]) -> list[str]:
    results = await asyncio.gather(*(gateway.chat(model, r) for r in requests))
    return [r.text for r in results]


async def test_openai_batches_go_through_a_jsonl_file_and_come_back_from_the_output_file(
    sim: ProviderSimulator,
) -> None:
    async with _gateway(sim) as gateway:
        texts = await _ask(gateway, "sim-openai/gpt", _requests(5))
    assert texts == [f"[sim] Question {i}: name a river." for i in range(5)]
    (upload,) = sim.log.operations("file_upload")
    assert upload.headers["content-type"].startswith("multipart/form-data; boundary=")
    (create,) = sim.log.operations("batch_create")
    assert create.path == "/v1/batches"
    assert create.status == 200
    batch_id = create.batch
    items = [e for e in sim.log if e.batch == batch_id and e.operation is None]
    assert len(items) == 5
    assert all(e.path == "/v1/chat/completions" and e.body["model"] == "gpt" for e in items)
    assert [e.operation for e in sim.log if e.operation == "file_content"] == ["file_content"]
    batch = sim.batches.batches[batch_id]
    assert batch.metadata["datamill_batch"].startswith("datamill-")
    lines = [orjson.loads(x) for x in sim.batches.files[batch.input_file_id][1].splitlines()]
    assert {line["method"] for line in lines} == {"POST"}
    assert {line["url"] for line in lines} == {"/v1/chat/completions"}
    assert len({line["custom_id"] for line in lines}) == 5


async def test_anthropic_message_batches_carry_params_and_results_by_custom_id(
    sim: ProviderSimulator,
) -> None:
    requests = [
        ChatRequest((Message("user", f"Give the answer {i}."),), json_schema=SCHEMA, max_tokens=200)
        for i in range(4)
    ]
    async with _gateway(sim) as gateway:
        results = await asyncio.gather(*(gateway.chat("sim-anthropic/claude", r) for r in requests))
    assert all(isinstance(r.data, dict) and "answer" in r.data for r in results)
    (create,) = sim.log.operations("batch_create")
    assert create.path == "/v1/messages/batches"
    assert create.headers["anthropic-version"]
    assert sim.log.operations("batch_results")
    items = [e for e in sim.log if e.batch == create.batch and e.operation is None]
    assert len(items) == 4
    assert all(e.body["tool_choice"] == {"type": "tool", "name": "output"} for e in items)


async def test_gemini_batches_send_inline_requests_and_read_inlined_responses(sim: ProviderSimulator) -> None:
    async with _gateway(sim) as gateway:
        texts = await _ask(gateway, "sim-gemini/pro", _requests(3))
    assert texts == [f"[sim] Question {i}: name a river." for i in range(3)]
    (create,) = sim.log.operations("batch_create")
    assert create.path == "/v1beta/models/pro:batchGenerateContent"
    assert create.batch is not None
    assert create.batch.startswith("batches/")
    items = [e for e in sim.log if e.batch == create.batch and e.operation is None]
    assert len(items) == 3
    assert all("contents" in e.body and "systemInstruction" in e.body for e in items)


@pytest.mark.parametrize("model", MODELS)
async def test_a_batched_call_answers_as_online_and_costs_the_discounted_bill(
    sim: ProviderSimulator, model: str
) -> None:
    requests = _requests(6)
    async with _gateway(sim, batch=False) as online:
        online_texts = await _ask(online, model, requests)
        online_cost = online.usage.total.cost_usd
    sim.reset()
    async with _gateway(sim) as gateway:
        batch_texts = await _ask(gateway, model, requests)
        total = gateway.usage.total
    assert batch_texts == online_texts
    assert len(sim.log.operations("batch_create")) == 1
    assert all(e.batch is not None for e in sim.log.answered())
    route = gateway.routing.resolve(model)
    assert route.batch_discount == 0.5
    billed = sim.log.cost_usd(
        route.input_price,
        route.output_price,
        cached_input_price=route.cached_input_price,
        cache_write_price=route.cache_write_price,
        batch_discount=route.batch_discount,
    )
    assert math.isclose(total.cost_usd, billed, rel_tol=1e-9)
    assert math.isclose(total.cost_usd, online_cost * 0.5, rel_tol=1e-9)


@pytest.mark.parametrize("model", MODELS)
async def test_requests_a_batch_answers_with_an_error_are_retried_online(
    sim: ProviderSimulator, model: str
) -> None:
    sim.set("server_error", 1.0, when=_first_time("Question 1:", "Question 3:"))
    requests = _requests(5)
    async with _gateway(sim) as gateway:
        texts = await _ask(gateway, model, requests)
        total = gateway.usage.total
    assert texts == [f"[sim] Question {i}: name a river." for i in range(5)]
    online = [e for e in sim.log.answered() if e.batch is None]
    assert sorted(e.prompt.split("Question ")[1][:1] for e in online) == ["1", "3"]
    assert len(sim.log.operations("batch_create")) == 1
    route = gateway.routing.resolve(model)
    billed = sim.log.cost_usd(
        route.input_price,
        route.output_price,
        cached_input_price=route.cached_input_price,
        cache_write_price=route.cache_write_price,
    )
    assert math.isclose(total.cost_usd, billed, rel_tol=1e-9)


async def test_a_route_set_to_batch_batches_without_the_run_asking(sim: ProviderSimulator) -> None:
    routing = Routing.from_dict(sim.routes(**PRICES, batch=True, batch_poll_s=0.05))
    async with Gateway(routing, retry=FAST) as gateway:
        await _ask(gateway, "sim-openai/gpt", _requests(2))
    assert len(sim.log.operations("batch_create")) == 1


async def test_a_route_set_against_batches_stays_online(sim: ProviderSimulator) -> None:
    routing = Routing.from_dict(sim.routes(**PRICES, batch=False))
    async with Gateway(routing, retry=FAST, batch=True) as gateway:
        await _ask(gateway, "sim-openai/gpt", _requests(2))
    assert sim.log.operations("batch_create") == []


async def test_an_endpoint_without_a_batch_api_stops_with_a_clear_error(sim: ProviderSimulator) -> None:
    routing = Routing.from_dict(
        {
            "routes": {
                "plain/*": {
                    "provider": "openai",
                    "base_url": sim.base_url + "/none/v1",
                    "api_key_env": None,
                    "batch_poll_s": 0.05,
                }
            }
        }
    )
    async with Gateway(routing, retry=FAST, batch=True) as gateway:
        with pytest.raises(ConfigError, match=r"batch API refused the batch.*--batch"):
            await gateway.chat("plain/m", _requests(1)[0])


async def test_a_new_gateway_on_the_same_journal_polls_the_batch_in_flight(
    sim: ProviderSimulator, tmp_path: Path
) -> None:
    sim.batches.delay_s = 0.5
    journal = tmp_path / "batches.sqlite"
    requests = _requests(4)
    first = _gateway(sim)
    first.use_batches(journal=journal)
    calls = asyncio.gather(*(first.chat("sim-anthropic/claude", r) for r in requests))
    while not sim.log.operations("batch_create"):
        await asyncio.sleep(0.01)
    calls.cancel()
    await asyncio.gather(calls, return_exceptions=True)
    await first.aclose()
    assert not [e for e in sim.log if e.batch and e.operation is None]  # not answered yet
    second = _gateway(sim)
    second.use_batches(journal=journal)
    async with second:
        texts = await _ask(second, "sim-anthropic/claude", requests)
    assert texts == [f"[sim] Question {i}: name a river." for i in range(4)]
    assert len(sim.log.operations("batch_create")) == 1
    assert [e for e in sim.log.answered() if e.batch is None] == []


@pytest.mark.parametrize("behaviour", ["refusal_text", "truncation", "empty"])
async def test_a_batch_answer_that_is_not_an_answer_is_asked_again_online(
    sim: ProviderSimulator, behaviour: str
) -> None:
    sim.set(behaviour, 1.0, when=_first_time("Question 2:"))
    requests = [dataclasses.replace(r, max_tokens=100) for r in _requests(4)]
    async with _gateway(sim) as gateway:
        texts = await _ask(gateway, "sim-openai/gpt", requests)
    assert texts == [f"[sim] Question {i}: name a river." for i in range(4)]
    (quirk,) = sim.log.with_behaviour(behaviour)
    assert quirk.batch is not None
    (online,) = [e for e in sim.log.answered() if e.batch is None]
    assert "Question 2:" in online.prompt


@pytest.mark.parametrize(
    ("model", "creates"),
    [("sim-openai/gpt", 1), ("sim-gemini/pro", 1), ("sim-anthropic/claude", 2)],
)
async def test_a_batch_whose_create_went_unrecorded_is_found_by_name_where_the_api_allows(
    sim: ProviderSimulator, tmp_path: Path, model: str, creates: int
) -> None:
    """A process killed after the provider created a batch but before the journal held its id: OpenAI
    (metadata) and Gemini (displayName) batches are found by name and polled; Anthropic's API has no name to
    look up, so that batch is submitted again (the documented window)."""
    sim.batches.delay_s = 0.5
    journal = tmp_path / "batches.sqlite"
    requests = _requests(3)
    first = _gateway(sim)
    first.use_batches(journal=journal)
    calls = asyncio.gather(*(first.chat(model, r) for r in requests))
    while not sim.log.operations("batch_create"):
        await asyncio.sleep(0.01)
    calls.cancel()
    await asyncio.gather(calls, return_exceptions=True)
    await first.aclose()
    with sqlite3.connect(journal) as db:  # as if killed before the create call's answer was recorded
        db.execute("UPDATE batches SET state = 'submitting', remote_id = NULL")
    second = _gateway(sim)
    second.use_batches(journal=journal)
    async with second:
        texts = await _ask(second, model, requests)
    assert texts == [f"[sim] Question {i}: name a river." for i in range(3)]
    assert len(sim.log.operations("batch_create")) == creates
    assert [e for e in sim.log.answered() if e.batch is None] == []
