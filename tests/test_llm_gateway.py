import asyncio
from pathlib import Path
from typing import Any

import pytest

from datamill.core.errors import (
    ConfigError,
    PermanentModelError,
    RateLimitedError,
    TransientError,
    UnknownModelError,
)
from datamill.llm.cache import InMemoryResponseCache, ResponseCache, SqliteResponseCache
from datamill.llm.fake_server import FakeOpenAIServer, FakeResponse
from datamill.llm.gateway import Gateway
from datamill.llm.providers.fake import FakeProvider
from datamill.llm.retry import RetryPolicy
from datamill.llm.routing import Routing
from datamill.llm.types import ChatRequest, Message, Route

FAST = RetryPolicy(max_attempts=3, base_delay=0.001, max_delay=0.005, max_rate_limit_retries=3)


def _routing(base_url: str, **fields: Any) -> Routing:
    entry = {"provider": "openai", "base_url": base_url, "input_price": 2.0, "output_price": 10.0, **fields}
    return Routing.from_dict({"routes": {"t/*": entry, "u/*": dict(entry)}, "default_model": "t/default"})


def _gateway(
    srv: FakeOpenAIServer, *, cache: ResponseCache | None = None, retry: RetryPolicy = FAST, **fields: Any
) -> Gateway:
    return Gateway(_routing(srv.base_url, **fields), cache=cache, retry=retry)


def _request(text: str = "hello", **kwargs: Any) -> ChatRequest:
    return ChatRequest((Message("user", text),), **kwargs)


async def test_a_call_returns_text_usage_and_cost() -> None:
    async with (
        FakeOpenAIServer(reply="hi there", prompt_tokens=1000, completion_tokens=500) as srv,
        _gateway(srv) as gateway,
    ):
        result = await gateway.chat("t/m", _request())

    assert result.text == "hi there"
    assert (result.usage.input_tokens, result.usage.output_tokens) == (1000, 500)
    assert result.cost_usd == pytest.approx((1000 * 2.0 + 500 * 10.0) / 1e6)
    assert result.model == "t/m"
    assert not result.cached
    assert result.finish_reason == "stop"
    assert srv.requests[0]["model"] == "m"


async def test_5xx_is_retried_then_succeeds() -> None:
    async with FakeOpenAIServer(fail_first=2) as srv, _gateway(srv) as gateway:
        result = await gateway.chat("t/m", _request())

    assert result.text == "fake reply"
    assert srv.count == 3
    assert gateway.usage.total.calls == 1
    assert gateway.usage.total.failures == 0


async def test_persistent_5xx_gives_up_naming_the_attempts() -> None:
    async with FakeOpenAIServer(error_rate=1.0) as srv, _gateway(srv) as gateway:
        with pytest.raises(TransientError, match=r"gave up after 3 attempts .*HTTP 500") as caught:
            await gateway.chat("t/m", _request())

    assert srv.count == 3
    assert isinstance(caught.value.__cause__, TransientError)
    assert gateway.usage.total.failures == 1
    assert gateway.usage.total.calls == 0


async def test_timeouts_are_retried_then_surface_a_clear_error() -> None:
    async with FakeOpenAIServer(hang_first=10) as srv:
        routing = _routing(srv.base_url, timeout_s=0.2)
        async with Gateway(routing, retry=RetryPolicy(max_attempts=2, base_delay=0.001)) as gateway:
            with pytest.raises(TransientError, match=r"gave up after 2 attempts .*timed out after 0.2s"):
                await gateway.chat("t/m", _request())

    assert srv.count == 2


async def test_a_hang_then_an_answer_succeeds() -> None:
    async with FakeOpenAIServer(hang_first=1) as srv, _gateway(srv, timeout_s=0.2) as gateway:
        result = await gateway.chat("t/m", _request())

    assert result.text == "fake reply"
    assert srv.count == 2


async def test_a_400_is_not_retried() -> None:
    bad = FakeResponse(400, {"error": {"message": "max_tokens too large"}})
    async with FakeOpenAIServer(reply=lambda body: bad) as srv, _gateway(srv) as gateway:
        with pytest.raises(PermanentModelError, match=r"HTTP 400.*max_tokens too large") as caught:
            await gateway.chat("t/m", _request())

    assert caught.value.status == 400
    assert srv.count == 1


async def test_rate_limits_have_their_own_budget() -> None:
    async with FakeOpenAIServer(max_concurrent=0, retry_after_s=0.001) as srv:
        retry = RetryPolicy(max_attempts=1, max_rate_limit_retries=2, base_delay=0.001)
        async with Gateway(_routing(srv.base_url), retry=retry) as gateway:
            with pytest.raises(
                RateLimitedError, match=r"gave up after 3 attempts \(0 transient failures, 3 rate-limited\)"
            ):
                await gateway.chat("t/m", _request())

    assert srv.count == 3  # max_attempts=1 did not stop rate-limit retries


async def test_a_malformed_200_is_retried() -> None:
    replies = iter([FakeResponse(200, b"<html>proxy error</html>"), "fine"])
    async with FakeOpenAIServer(reply=lambda body: next(replies)) as srv, _gateway(srv) as gateway:
        result = await gateway.chat("t/m", _request())

    assert result.text == "fine"
    assert srv.count == 2


async def test_a_missing_api_key_is_not_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DATAMILL_TEST_KEY", raising=False)
    async with FakeOpenAIServer() as srv, _gateway(srv, api_key_env="DATAMILL_TEST_KEY") as gateway:
        with pytest.raises(ConfigError, match="DATAMILL_TEST_KEY"):
            await gateway.chat("t/m", _request())

    assert srv.count == 0


async def test_a_cached_request_is_not_sent_twice() -> None:
    async with (
        FakeOpenAIServer(prompt_tokens=100, completion_tokens=10) as srv,
        _gateway(srv, cache=InMemoryResponseCache()) as gateway,
    ):
        first = await gateway.chat("t/m", _request(), tag="rephrase")
        second = await gateway.chat("t/m", _request(), tag="rephrase")
        other = await gateway.chat("t/m", _request("different"), tag="rephrase")

    assert srv.count == 2
    assert (first.cached, second.cached, other.cached) == (False, True, False)
    assert second.text == first.text
    assert second.usage == first.usage
    assert second.cost_usd == first.cost_usd > 0
    totals = gateway.usage.by_tag["rephrase"]
    assert (totals.calls, totals.cache_hits) == (2, 1)
    assert totals.cost_usd == pytest.approx(first.cost_usd + other.cost_usd)  # the hit added no cost
    assert totals.saved_usd == pytest.approx(first.cost_usd)


async def test_the_sqlite_cache_serves_a_new_gateway(tmp_path: Path) -> None:
    path = tmp_path / "cache" / "responses.sqlite"
    async with FakeOpenAIServer() as srv:
        async with _gateway(srv, cache=SqliteResponseCache(path)) as gateway:
            await gateway.chat("t/m", _request())
        async with _gateway(srv, cache=SqliteResponseCache(path)) as again:
            result = await again.chat("t/m", _request())

    assert srv.count == 1
    assert result.cached
    assert result.text == "fake reply"
    assert again.usage.total.cache_hits == 1
    assert again.usage.total.calls == 0


async def test_failures_are_not_cached() -> None:
    async with FakeOpenAIServer(fail_first=3) as srv:
        cache = InMemoryResponseCache()
        async with _gateway(srv, cache=cache) as gateway:
            with pytest.raises(TransientError):
                await gateway.chat("t/m", _request())
            assert len(cache) == 0
            result = await gateway.chat("t/m", _request())

    assert not result.cached
    assert len(cache) == 1


async def test_usage_and_cost_are_summed_per_tag_and_model() -> None:
    async with (
        FakeOpenAIServer(prompt_tokens=10, completion_tokens=20, reasoning_tokens=5) as srv,
        _gateway(srv) as gateway,
    ):
        await gateway.chat("t/a", _request("1"), tag="judge")
        await gateway.chat("t/a", _request("2"), tag="rephrase")
        await gateway.chat("u/b", _request("3"), tag="rephrase")

    one_cost = (10 * 2.0 + (20 + 5) * 10.0) / 1e6
    snap = gateway.usage.snapshot()
    assert snap["total"]["calls"] == 3
    assert snap["by_tag"]["rephrase"]["calls"] == 2
    assert snap["by_tag"]["judge"]["calls"] == 1
    assert snap["by_model"]["t/a"]["calls"] == 2
    assert snap["by_model"]["u/b"]["calls"] == 1
    assert snap["by_tag"]["rephrase"]["input_tokens"] == 20
    assert snap["by_tag"]["rephrase"]["output_tokens"] == 40
    assert snap["by_tag"]["rephrase"]["thinking_tokens"] == 10
    assert snap["total"]["cost_usd"] == pytest.approx(3 * one_cost)
    assert snap["by_model"]["u/b"]["cost_usd"] == pytest.approx(one_cost)
    assert snap["total"]["latency_s"] > 0


async def test_unknown_model_error_lists_configured_names() -> None:
    gateway = Gateway(_routing("http://127.0.0.1:9/v1"))

    with pytest.raises(UnknownModelError, match=r"unknown model 'nope/x'; configured models: t/\*, u/\*"):
        await gateway.chat("nope/x", _request())
    with pytest.raises(UnknownModelError):
        gateway.model("nope/x")
    await gateway.aclose()


def _fake_routing() -> Routing:
    return Routing.from_dict(
        {
            "routes": {
                "f/*": {"provider": "fake", "default_thinking_budget": 3000, "input_price": 1.0},
                "judge/model": {"provider": "fake"},
            },
            "default_model": "f/default",
        }
    )


async def test_thinking_budget_is_filled_on_thinking_routes_and_cleared_elsewhere() -> None:
    fake = FakeProvider()
    async with Gateway(_fake_routing(), providers={"fake": fake}) as gateway:
        await gateway.chat("f/m-thinking", _request("a"))
        await gateway.chat("f/m-thinking", _request("b", thinking_budget=500))
        plain = await gateway.chat("f/m", _request("c", thinking_budget=500))

    assert [c.thinking_budget for c in fake.calls] == [3000, 500, None]
    assert plain.usage.thinking_tokens == 0


async def test_thinking_routes_send_reasoning_effort_over_http() -> None:
    async with FakeOpenAIServer() as srv, _gateway(srv) as gateway:
        await gateway.chat("t/m-thinking", _request(max_tokens=100))
        await gateway.chat("t/m-thinking", _request(thinking_budget=20000))

    assert srv.requests[0]["model"] == "m"
    assert srv.requests[0]["reasoning_effort"] == "medium"  # the route's default budget, 2048
    assert srv.requests[0]["max_completion_tokens"] == 100 + 2048
    assert srv.requests[1]["reasoning_effort"] == "high"


async def test_roles_map_to_models_and_fall_back_to_the_default() -> None:
    fake = FakeProvider()
    async with Gateway(_fake_routing(), providers={"fake": fake}, roles={"judge": "judge/model"}) as gateway:
        judge = gateway.role("judge")
        other = gateway.role("outline")
        result = await judge.chat(_request("grade this"), tag="judge")

    assert (judge.name, judge.route.name) == ("judge/model", "judge/model")
    assert other.name == "f/default"
    assert result.text == "[fake] grade this"
    assert gateway.usage.by_tag["judge"].calls == 1


async def test_providers_are_created_lazily_from_the_registry() -> None:
    async with Gateway(_fake_routing()) as gateway:
        result = await gateway.chat("f/m", _request("lazy"))

    assert result.text == "[fake] lazy"


async def test_an_unknown_provider_kind_is_a_config_error() -> None:
    routing = Routing.from_dict({"routes": {"z/*": {"provider": "carrier-pigeon"}}})
    async with Gateway(routing) as gateway:
        with pytest.raises(ConfigError, match="unknown provider kind 'carrier-pigeon'"):
            await gateway.chat("z/m", _request())


async def test_remote_hosts_are_blocked_in_tests() -> None:
    async with Gateway(Routing.load(environ={"OPENAI_API_KEY": "sk-test"})) as gateway:
        for _ in range(2):  # a refused URL is not remembered as allowed
            with pytest.raises(PermanentModelError, match="remote model requests are blocked"):
                await gateway.chat("openai/gpt-6-luna", _request())


async def test_concurrent_calls_respect_the_route_ceiling() -> None:
    async with FakeOpenAIServer(latency_s=0.02) as srv, _gateway(srv, max_concurrency=4) as gateway:
        await asyncio.gather(*(gateway.chat("t/m", _request(str(i))) for i in range(20)))

    assert srv.count == 20
    assert srv.max_in_flight <= 4


async def test_a_cancelled_call_gives_its_slot_back() -> None:
    async with FakeOpenAIServer(hang_first=1) as srv, _gateway(srv, max_concurrency=1) as gateway:
        stuck = asyncio.create_task(gateway.chat("t/m", _request("stuck")))
        await srv.wait_for_requests(1)
        stuck.cancel()
        with pytest.raises(asyncio.CancelledError):
            await stuck
        result = await gateway.chat("t/m", _request("next"))

    assert result.text == "fake reply"
    assert gateway.limiter("t/m").in_flight == 0


def test_model_handle_carries_the_resolved_route() -> None:
    gateway = Gateway(_fake_routing())

    handle = gateway.model("f/x-thinking")

    assert isinstance(handle.route, Route)
    assert handle.route.thinking
    assert handle.route.model == "x"
