"""The gateway over real HTTP on loopback.

Replies that are not answers are retried within a budget, then named; failures no retry can fix stop the
route.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from datamill.core.errors import (
    ConnectionConfigError,
    ContentFilteredError,
    EmptyReplyError,
    PermanentModelError,
    QuotaExhaustedError,
    RefusalError,
    RouteFailingError,
    TruncatedReplyError,
    fails_every_row,
)
from datamill.llm.cache import InMemoryResponseCache, cache_key
from datamill.llm.fake_server import FakeOpenAIServer, FakeResponse
from datamill.llm.gateway import Gateway
from datamill.llm.retry import RetryPolicy
from datamill.llm.routing import Routing
from datamill.llm.types import ChatRequest, Message
from http_stubs import StubServer

FAST = RetryPolicy(max_attempts=3, base_delay=0.001, max_delay=0.005, max_rate_limit_retries=3)
SCHEMA = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}
KEY_ENV = "DATAMILL_TEST_PROVIDER_KEY"


def completion(content: Any, finish: str = "stop", **message: Any) -> FakeResponse:
    body = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content, **message},
                "finish_reason": finish,
            }
        ],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
    }
    return FakeResponse(200, body)


def scripted(*answers: FakeResponse) -> Callable[[dict[str, Any]], FakeResponse]:
    """Answers in order; the last one repeats."""
    queue = list(answers)

    def reply(_body: dict[str, Any]) -> FakeResponse:
        return queue.pop(0) if len(queue) > 1 else queue[0]

    return reply


def gateway_for(base_url: str, provider: str = "openai", **kwargs: Any) -> Gateway:
    entry = {"provider": provider, "base_url": base_url, "input_price": 1.0, "output_price": 2.0}
    if provider != "openai":
        entry["api_key_env"] = KEY_ENV
    routing = Routing.from_dict(
        {"routes": {"t/*": entry}, "default_model": "t/m"}, environ={KEY_ENV: "test-key"}
    )
    kwargs.setdefault("retry", FAST)
    return Gateway(routing, **kwargs)


def ask(text: str = "What is the capital of France?", **kwargs: Any) -> ChatRequest:
    return ChatRequest((Message("user", text),), **kwargs)


@pytest.fixture
async def stub() -> AsyncIterator[StubServer]:
    server = StubServer()
    await server.start()
    yield server
    await server.close()


# -- replies that are not answers --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "bad",
    [
        completion("I'm sorry, but I can't help with that."),
        completion(None, refusal="I'm sorry, I cannot assist with that request."),
        completion(""),
        completion("Paris is the cap", "length"),
        completion("", "content_filter"),
        completion("<think>The user asks about France and I should"),
    ],
)
async def test_a_reply_that_is_not_an_answer_is_asked_again(bad: FakeResponse) -> None:
    async with (
        FakeOpenAIServer(reply=scripted(bad, completion("Paris."))) as srv,
        gateway_for(srv.base_url) as gateway,
    ):
        result = await gateway.chat("t/m", ask())

    assert result.text == "Paris."
    assert srv.count == 2
    assert gateway.usage.total.usage.input_tokens == 20  # the bad reply was billed too


@pytest.mark.parametrize(
    ("bad", "error", "named"),
    [
        (completion("I can't help with that."), RefusalError, "refused"),
        (completion(None, refusal="I cannot help with that."), RefusalError, "refused"),
        (completion("   "), EmptyReplyError, "empty reply"),
        (completion("Paris is", "length"), TruncatedReplyError, "cut off at the token limit"),
        (completion("", "content_filter"), ContentFilteredError, "content filter"),
    ],
)
async def test_a_model_that_never_answers_is_named_after_two_replies(
    bad: FakeResponse, error: type[Exception], named: str
) -> None:
    cache = InMemoryResponseCache()
    async with (
        FakeOpenAIServer(reply=scripted(bad)) as srv,
        gateway_for(srv.base_url, cache=cache) as gateway,
    ):
        with pytest.raises(error, match=named) as caught:
            await gateway.chat("t/m", ask(max_tokens=100))
        assert "2 attempts" in str(caught.value)
        assert not fails_every_row(caught.value)
        assert cache.get(cache_key(gateway.routing.resolve("t/m"), ask(max_tokens=100))) is None

    assert srv.count == 2


async def test_a_cut_reply_is_asked_again_with_twice_the_cap() -> None:
    reply = scripted(completion("Paris is", "length"), completion("Paris is the capital."))
    async with FakeOpenAIServer(reply=reply) as srv, gateway_for(srv.base_url) as gateway:
        result = await gateway.chat("t/m", ask(max_tokens=50))

    assert result.text == "Paris is the capital."
    assert [r["max_tokens"] for r in srv.requests] == [50, 100]


async def test_reasoning_is_split_off_and_the_answer_cached_clean() -> None:
    think = completion("<think>\nFrance's capital is Paris.\n</think>\n\nParis.")
    cache = InMemoryResponseCache()
    async with (
        FakeOpenAIServer(reply=scripted(think)) as srv,
        gateway_for(srv.base_url, cache=cache) as gateway,
    ):
        first = await gateway.chat("t/m", ask())
        again = await gateway.chat("t/m", ask())

    assert (first.text, first.reasoning) == ("Paris.", "France's capital is Paris.")
    assert (again.text, again.cached) == ("Paris.", True)
    assert srv.count == 1


async def test_a_cached_reply_that_is_not_an_answer_is_not_served() -> None:
    cache = InMemoryResponseCache()
    async with (
        FakeOpenAIServer(reply=scripted(completion("Paris."))) as srv,
        gateway_for(srv.base_url, cache=cache) as gateway,
    ):
        key = cache_key(gateway.routing.resolve("t/m"), ask())
        cache.put(key, {"text": "I can't help with that.", "usage": [1, 1, 0], "cost_usd": 0.0})
        result = await gateway.chat("t/m", ask())

    assert (result.text, result.cached, srv.count) == ("Paris.", False, 1)


async def test_json_in_prose_or_fences_needs_no_repair_call() -> None:
    prose = completion('Here is the JSON you asked for:\n```json\n{"answer": "Paris"}\n```\nAnything else?')
    async with FakeOpenAIServer(reply=scripted(prose)) as srv, gateway_for(srv.base_url) as gateway:
        result = await gateway.chat("t/m", ask(json_schema=SCHEMA))

    assert result.data == {"answer": "Paris"}
    assert srv.count == 1


async def test_a_refusal_to_a_json_request_is_a_refusal_not_invalid_json() -> None:
    refusal = completion(None, refusal="I'm sorry, I can't help with that.")
    async with FakeOpenAIServer(reply=scripted(refusal)) as srv, gateway_for(srv.base_url) as gateway:
        with pytest.raises(RefusalError, match="refused") as caught:
            await gateway.chat("t/m", ask(json_schema=SCHEMA))

    assert "JSON" not in str(caught.value)
    assert srv.count == 2


async def test_anthropic_empty_refusal_and_thinking_through_the_gateway(stub: StubServer) -> None:
    message = {"id": "m", "type": "message", "role": "assistant", "model": "c", "stop_sequence": None}
    usage = {"input_tokens": 8, "output_tokens": 3}
    stub.reply(200, {**message, "content": [], "stop_reason": "refusal", "usage": usage})
    thinking = {"type": "thinking", "thinking": "Simple arithmetic.", "signature": "sig"}
    answer = [thinking, {"type": "text", "text": "4"}]
    stub.reply(200, {**message, "content": answer, "stop_reason": "end_turn", "usage": usage})
    async with gateway_for(stub.base_url, "anthropic") as gateway:
        result = await gateway.chat("t/m", ask("2+2?"))

    assert (result.text, result.reasoning) == ("4", "Simple arithmetic.")
    assert len(stub.requests) == 2


async def test_gemini_safety_block_without_parts_is_retried_then_named(stub: StubServer) -> None:
    stub.reply(200, {"candidates": [{"finishReason": "SAFETY", "index": 0}], "usageMetadata": {}})
    async with gateway_for(stub.base_url, "gemini") as gateway:
        with pytest.raises(ContentFilteredError, match="content filter"):
            await gateway.chat("t/m", ask())

    assert len(stub.requests) == 2


async def test_gemini_blocked_prompt_is_not_asked_again(stub: StubServer) -> None:
    stub.reply(200, {"promptFeedback": {"blockReason": "SAFETY"}, "usageMetadata": {"promptTokenCount": 5}})
    async with gateway_for(stub.base_url, "gemini") as gateway:
        with pytest.raises(ContentFilteredError, match="blocked the prompt: SAFETY"):
            await gateway.chat("t/m", ask())

    assert len(stub.requests) == 1


# -- provider statuses -------------------------------------------------------------------------------------


async def test_anthropic_529_overloaded_is_transient(stub: StubServer) -> None:
    overloaded = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    stub.reply(529, overloaded)
    stub.reply(
        200,
        {
            "id": "m",
            "type": "message",
            "role": "assistant",
            "model": "c",
            "content": [{"type": "text", "text": "Hello."}],
            "stop_reason": "end_turn",
            "usage": {"input_tokens": 3, "output_tokens": 2},
        },
    )
    async with gateway_for(stub.base_url, "anthropic") as gateway:
        result = await gateway.chat("t/m", ask())

    assert result.text == "Hello."


async def test_insufficient_quota_stops_at_once_instead_of_waiting_forever() -> None:
    body = {
        "error": {
            "message": "You exceeded your current quota, please check your plan and billing details.",
            "type": "insufficient_quota",
            "param": None,
            "code": "insufficient_quota",
        }
    }
    quota = FakeResponse(429, body, {"retry-after": "1"})
    async with FakeOpenAIServer(reply=scripted(quota)) as srv, gateway_for(srv.base_url) as gateway:
        with pytest.raises(QuotaExhaustedError, match="no quota or credit left") as caught:
            await gateway.chat("t/m", ask())

    assert fails_every_row(caught.value)
    assert srv.count == 1


async def test_anthropic_credit_balance_too_low_stops_the_run(stub: StubServer) -> None:
    message = "Your credit balance is too low to access the Anthropic API. Please go to Plans & Billing."
    stub.reply(400, {"type": "error", "error": {"type": "invalid_request_error", "message": message}})
    async with gateway_for(stub.base_url, "anthropic") as gateway:
        with pytest.raises(QuotaExhaustedError) as caught:
            await gateway.chat("t/m", ask())

    assert fails_every_row(caught.value)


async def test_a_400_on_every_request_stops_the_route() -> None:
    bad = FakeResponse(400, {"error": {"message": "Unsupported parameter: 'max_tokens'", "type": "invalid"}})
    async with (
        FakeOpenAIServer(reply=scripted(bad)) as srv,
        gateway_for(srv.base_url, stop_after_failures=3) as gateway,
    ):
        for _ in range(2):
            with pytest.raises(PermanentModelError) as first:
                await gateway.chat("t/m", ask())
            assert not fails_every_row(first.value)
        with pytest.raises(RouteFailingError, match="Unsupported parameter") as stopped:
            await gateway.chat("t/m", ask())
        with pytest.raises(RouteFailingError):
            await gateway.chat("t/m", ask("another row"))

    assert fails_every_row(stopped.value)
    assert srv.count == 3  # the call after the stop never reached the server


async def test_a_400_after_a_success_only_rejects_its_row() -> None:
    too_long = FakeResponse(400, {"error": {"message": "This model's maximum context length is 8192 tokens"}})
    async with (
        FakeOpenAIServer(reply=scripted(completion("ok"), too_long)) as srv,
        gateway_for(srv.base_url, stop_after_failures=2) as gateway,
    ):
        await gateway.chat("t/m", ask())
        for n in range(4):
            with pytest.raises(PermanentModelError) as caught:
                await gateway.chat("t/m", ask(f"row {n}"))
            assert not isinstance(caught.value, RouteFailingError)


# -- an endpoint that cannot be reached --------------------------------------------------------------------


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_a_refused_port_stops_the_route_within_seconds() -> None:
    gateway = gateway_for(f"http://127.0.0.1:{closed_port()}/v1", retry=RetryPolicy(base_delay=0.01))
    async with gateway:
        calls = [gateway.chat("t/m", ask(f"row {n}")) for n in range(20)]
        results = await asyncio.wait_for(asyncio.gather(*calls, return_exceptions=True), timeout=10)

    # The first four calls to fail reject their rows with the cause; from the fifth on, the route is down.
    rejected = [r for r in results if isinstance(r, ConnectionConfigError)]
    stopped = [r for r in results if isinstance(r, RouteFailingError)]
    assert (len(rejected), len(stopped)) == (4, 16), results
    assert "refused" in str(stopped[0]).lower()
    assert "t/m" in str(stopped[0])
    assert fails_every_row(stopped[0])
    assert not fails_every_row(rejected[0])


async def test_a_redirect_stops_the_route(stub: StubServer) -> None:
    stub.reply(301, "", {"location": "https://api.example.com/v1/chat/completions"})
    async with gateway_for(stub.base_url + "/v1", stop_after_failures=2) as gateway:
        results = [
            await asyncio.gather(gateway.chat("t/m", ask(f"r{n}")), return_exceptions=True) for n in range(3)
        ]
        results = [r for (r,) in results]

    assert isinstance(results[0], ConnectionConfigError), results
    assert all(isinstance(r, RouteFailingError) for r in results[1:]), results
    assert "redirect" in str(results[-1]).lower()
    assert len(stub.requests) == 2  # not retried; the third call was never sent
