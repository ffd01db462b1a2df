"""Cost is what the provider bills: cached-input usage read from each provider's usage fields, priced at the
route's cached-input and cache-write prices, summed by the gateway's ledger; Anthropic's cache mark."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from datamill.core.errors import ConfigError
from datamill.llm.cache import InMemoryResponseCache
from datamill.llm.gateway import Gateway
from datamill.llm.providers import anthropic, gemini, openai
from datamill.llm.routing import Routing
from datamill.llm.types import ChatRequest, Message, Route, Usage
from http_stubs import StubServer

OPENAI_BODY = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],
    "usage": {
        "prompt_tokens": 2006,
        "completion_tokens": 300,
        "prompt_tokens_details": {"cached_tokens": 1920, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 100},
    },
}
ANTHROPIC_BODY = {
    "id": "msg_1",
    "type": "message",
    "role": "assistant",
    "content": [{"type": "text", "text": "ok"}],
    "stop_reason": "end_turn",
    "usage": {
        "input_tokens": 50,
        "cache_creation_input_tokens": 2000,
        "cache_read_input_tokens": 0,
        "output_tokens": 200,
    },
}
GEMINI_BODY = {
    "candidates": [{"content": {"role": "model", "parts": [{"text": "ok"}]}, "finishReason": "STOP"}],
    "usageMetadata": {
        "promptTokenCount": 3000,
        "cachedContentTokenCount": 2048,
        "candidatesTokenCount": 120,
        "thoughtsTokenCount": 30,
        "totalTokenCount": 3150,
    },
}


def route(provider: str, **fields: Any) -> Route:
    return Routing.from_dict(
        {
            "routes": {
                "m/x": {"provider": provider, "base_url": "http://127.0.0.1:1", "api_key_env": None, **fields}
            }
        }
    ).resolve("m/x")


def test_openai_cached_tokens_are_part_of_the_prompt() -> None:
    usage = openai.parse_reply(orjson.dumps(OPENAI_BODY), route("openai")).usage
    assert usage == Usage(2006, 200, 100, cached_input_tokens=1920)


def test_anthropic_cache_reads_and_writes_are_counted_apart() -> None:
    body = dict(ANTHROPIC_BODY, usage={**ANTHROPIC_BODY["usage"], "cache_read_input_tokens": 700})
    usage = anthropic.parse_reply(orjson.dumps(body), route("anthropic")).usage
    assert usage == Usage(2750, 200, 0, cached_input_tokens=700, cache_write_tokens=2000)


def test_gemini_cached_content_tokens_are_part_of_the_prompt() -> None:
    usage = gemini.parse_reply(orjson.dumps(GEMINI_BODY), route("gemini")).usage
    assert usage == Usage(3000, 120, 30, cached_input_tokens=2048)


def test_shipped_cache_prices_follow_each_providers_rules() -> None:
    routing = Routing.load()
    sonnet = routing.resolve("anthropic/claude-sonnet-4-6")
    assert (sonnet.input_price, sonnet.cached_input_price, sonnet.cache_write_price) == (3.0, 0.3, 3.75)
    assert sonnet.batch_discount == 0.5
    gpt = routing.resolve("openai/gpt-6-astra")
    assert (gpt.cached_input_price, gpt.cache_write_price) == pytest.approx((0.125, 1.25))
    pro = routing.resolve("gemini/gemini-3.1-pro-preview")
    assert (pro.cached_input_price, pro.batch_discount) == pytest.approx((0.2, 0.5))
    assert routing.resolve("ollama/llama3").batch_discount == 0.0


def test_a_routing_file_sets_cache_prices_and_checks_the_discount() -> None:
    r = route("openai", input_price=2.0, cached_input_price=1.0, cache_write_price=2.5, batch_discount=0.25)
    assert (r.cached_input_price, r.cache_write_price, r.batch_discount) == (1.0, 2.5, 0.25)
    with pytest.raises(ConfigError, match=r"batch_discount.*below 1"):
        route("openai", batch_discount=1.0)
    with pytest.raises(ConfigError, match=r"cached_input_price.*non-negative"):
        route("openai", cached_input_price=-1)


def test_cost_prices_each_part_of_the_prompt_as_billed() -> None:
    r = route("anthropic", input_price=3.0, output_price=15.0)
    usage = Usage(2750, 200, 0, cached_input_tokens=700, cache_write_tokens=2000)
    expected = (50 * 3.0 + 700 * 0.3 + 2000 * 3.75 + 200 * 15.0) / 1e6
    assert r.cost(usage) == pytest.approx(expected)
    assert r.cost(usage, batched=True) == pytest.approx(expected / 2)
    # A route built by hand without cache prices bills cached tokens at the input price.
    plain = Route("p", "openai", "p", input_price=1.0)
    assert plain.cost(Usage(1000, 0, 0, cached_input_tokens=1000)) == pytest.approx(0.001)


def cached_request(*, point: int, row: str = "The row's request") -> ChatRequest:
    messages = [
        Message("system", "You rewrite requests."),
        Message("user", "Example request"),
        Message("assistant", "Example rewrite"),
        Message("user", row),
    ]
    messages[point] = Message(messages[point].role, messages[point].content, cache_point=True)
    return ChatRequest(tuple(messages), max_tokens=64)


def test_anthropic_marks_the_end_of_the_stable_prefix() -> None:
    payload, _ = anthropic.build_payload(route("anthropic"), cached_request(point=2))
    assert payload["system"] == "You rewrite requests."
    turns = payload["messages"]
    assert turns[1] == {
        "role": "assistant",
        "content": [{"type": "text", "text": "Example rewrite", "cache_control": {"type": "ephemeral"}}],
    }
    assert turns[2] == {"role": "user", "content": "The row's request"}
    assert "cache_control" not in orjson.dumps(turns[0]).decode()


def test_anthropic_marks_the_system_block_when_it_ends_the_prefix() -> None:
    payload, _ = anthropic.build_payload(route("anthropic"), cached_request(point=0))
    assert payload["system"] == [
        {"type": "text", "text": "You rewrite requests.", "cache_control": {"type": "ephemeral"}}
    ]
    assert "cache_control" not in orjson.dumps(payload["messages"]).decode()


def test_no_cache_point_sends_no_cache_control() -> None:
    request = ChatRequest((Message("system", "s"), Message("user", "u")))
    payload, _ = anthropic.build_payload(route("anthropic"), request)
    assert "cache_control" not in orjson.dumps(payload).decode()


def test_the_cache_point_does_not_change_the_response_cache_key() -> None:
    from datamill.llm.cache import cache_key

    r = route("anthropic")
    plain = ChatRequest((Message("system", "s"), Message("user", "u")))
    marked = ChatRequest((Message("system", "s", cache_point=True), Message("user", "u")))
    assert cache_key(r, plain) == cache_key(r, marked)


async def test_the_ledger_sums_what_the_provider_billed(stub: StubServer) -> None:
    base = stub.base_url
    first = {**ANTHROPIC_BODY}
    second = {
        **ANTHROPIC_BODY,
        "usage": {"input_tokens": 60, "cache_read_input_tokens": 2000, "output_tokens": 150},
    }
    stub.reply(200, first)
    stub.reply(200, second)
    routing = Routing.from_dict(
        {
            "routes": {
                "anthropic/m": {
                    "provider": "anthropic",
                    "base_url": base,
                    "api_key_env": None,
                    "input_price": 3.0,
                    "output_price": 15.0,
                }
            }
        }
    )
    cache = InMemoryResponseCache()
    async with Gateway(routing, cache=cache) as gateway:
        a = await gateway.chat("anthropic/m", cached_request(point=2), tag="rephrase")
        b = await gateway.chat("anthropic/m", cached_request(point=2, row="Another row"), tag="rephrase")
        again = await gateway.chat("anthropic/m", cached_request(point=2), tag="rephrase")
        totals = gateway.usage.snapshot()["by_tag"]["rephrase"]
    assert a.cost_usd == pytest.approx((50 * 3.0 + 2000 * 3.75 + 200 * 15.0) / 1e6)
    assert b.cost_usd == pytest.approx((60 * 3.0 + 2000 * 0.3 + 150 * 15.0) / 1e6)
    assert again.cached
    assert again.usage == a.usage  # the response cache keeps the cache counts
    assert totals["cost_usd"] == pytest.approx(a.cost_usd + b.cost_usd)
    assert (totals["input_tokens"], totals["cached_input_tokens"], totals["cache_write_tokens"]) == (
        4110,
        2000,
        2000,
    )
    assert totals["saved_usd"] == pytest.approx(a.cost_usd)


def test_a_rows_own_system_message_stays_outside_the_cached_system_block() -> None:
    request = ChatRequest(
        (
            Message("system", "The blueprint.", cache_point=True),
            Message("system", "The row's own system message."),
            Message("user", "Hi"),
        )
    )
    payload, _ = anthropic.build_payload(route("anthropic"), request)
    assert payload["system"] == [
        {"type": "text", "text": "The blueprint.", "cache_control": {"type": "ephemeral"}},
        {"type": "text", "text": "The row's own system message."},
    ]
