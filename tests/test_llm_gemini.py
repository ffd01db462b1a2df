"""GeminiProvider against a loopback stub of generateContent: request shape, reply parsing, blocks, errors."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from datamill.core.errors import (
    ConfigError,
    ContentFilteredError,
    PermanentModelError,
    RateLimitedError,
    TransientError,
)
from datamill.llm.http.transport import HttpTransport
from datamill.llm.providers.gemini import GeminiProvider
from datamill.llm.types import ChatRequest, Message, Role, Route
from http_stubs import StubServer

KEY_ENV = "DATAMILL_TEST_GEMINI_KEY"
SCHEMA = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}
PATH = "/v1beta/models/gemini-2.5-flash:generateContent"


@pytest.fixture
async def provider() -> AsyncIterator[GeminiProvider]:
    transport = HttpTransport()
    yield GeminiProvider(transport)
    await transport.aclose()


def make_route(base_url: str, **overrides: Any) -> Route:
    fields: dict[str, Any] = {
        "name": "gemini/gemini-2.5-flash",
        "provider": "gemini",
        "model": "gemini-2.5-flash",
        "base_url": base_url,
        "api_key_env": KEY_ENV,
        "api_key": "AIza-test",
    }
    fields.update(overrides)
    return Route(**fields)


def gemini_body(parts: list[dict[str, Any]], finish: str = "STOP", **usage: int) -> dict[str, Any]:
    return {
        "candidates": [{"content": {"role": "model", "parts": parts}, "finishReason": finish, "index": 0}],
        "usageMetadata": {"promptTokenCount": 31, "candidatesTokenCount": 9, "totalTokenCount": 40, **usage},
        "modelVersion": "gemini-2.5-flash",
    }


def chat(*messages: tuple[Role, str], **kwargs: Any) -> ChatRequest:
    return ChatRequest(messages=tuple(Message(role, text) for role, text in messages), **kwargs)


async def test_text_request_shape_and_reply(stub: StubServer, provider: GeminiProvider) -> None:
    stub.reply(200, gemini_body([{"text": "Hello"}, {"text": " there"}]))
    request = chat(
        ("system", "Be brief."),
        ("user", "Hi"),
        ("assistant", "Hello!"),
        ("user", "Again"),
        max_tokens=100,
        temperature=0.3,
        stop=("END",),
        seed=7,
    )

    reply = await provider.complete(make_route(stub.base_url), request)

    seen = stub.last
    assert (seen.method, seen.path) == ("POST", PATH)
    assert seen.headers["x-goog-api-key"] == "AIza-test"
    assert seen.body == {
        "contents": [
            {"role": "user", "parts": [{"text": "Hi"}]},
            {"role": "model", "parts": [{"text": "Hello!"}]},
            {"role": "user", "parts": [{"text": "Again"}]},
        ],
        "systemInstruction": {"parts": [{"text": "Be brief."}]},
        "generationConfig": {"temperature": 0.3, "maxOutputTokens": 100, "stopSequences": ["END"], "seed": 7},
    }
    assert reply.text == "Hello there"
    assert (reply.usage.input_tokens, reply.usage.output_tokens, reply.usage.thinking_tokens) == (31, 9, 0)
    assert reply.finish_reason == "stop"


async def test_minimal_request_omits_optional_fields(stub: StubServer, provider: GeminiProvider) -> None:
    stub.reply(200, gemini_body([{"text": "ok"}], finish="MAX_TOKENS"))

    reply = await provider.complete(
        make_route(stub.base_url, model="models/gemini-2.5-flash"), chat(("user", "hi"))
    )

    assert stub.last.path == PATH
    assert "systemInstruction" not in stub.last.body
    assert stub.last.body["generationConfig"] == {"temperature": 0.7}
    assert reply.finish_reason == "length"


async def test_thinking_route(stub: StubServer, provider: GeminiProvider) -> None:
    parts = [{"text": "Thinking about it...", "thought": True}, {"text": "42"}]
    stub.reply(200, gemini_body(parts, thoughtsTokenCount=700))
    route = make_route(stub.base_url, name="gemini/gemini-2.5-flash-thinking", thinking=True)

    reply = await provider.complete(route, chat(("user", "6*7?"), max_tokens=200, thinking_budget=3000))

    config = stub.last.body["generationConfig"]
    assert config["thinkingConfig"] == {"thinkingBudget": 3000}
    assert config["maxOutputTokens"] == 3200
    assert reply.text == "42"
    assert (reply.usage.output_tokens, reply.usage.thinking_tokens) == (9, 700)


async def test_thinking_route_uses_route_default_budget(stub: StubServer, provider: GeminiProvider) -> None:
    stub.reply(200, gemini_body([{"text": "ok"}]))
    route = make_route(stub.base_url, thinking=True, default_thinking_budget=1500)

    await provider.complete(route, chat(("user", "hi")))

    config = stub.last.body["generationConfig"]
    assert config["thinkingConfig"] == {"thinkingBudget": 1500}
    assert "maxOutputTokens" not in config


async def test_json_schema_is_native(stub: StubServer, provider: GeminiProvider) -> None:
    stub.reply(200, gemini_body([{"text": '{"answer": "Paris"}'}]))

    reply = await provider.complete(make_route(stub.base_url), chat(("user", "Capital?"), json_schema=SCHEMA))

    config = stub.last.body["generationConfig"]
    assert config["responseMimeType"] == "application/json"
    assert config["responseJsonSchema"] == SCHEMA
    assert "systemInstruction" not in stub.last.body
    assert json.loads(reply.text) == {"answer": "Paris"}


async def test_json_schema_on_route_without_native_schemas(
    stub: StubServer, provider: GeminiProvider
) -> None:
    stub.reply(200, gemini_body([{"text": '{"answer": "Paris"}'}]))
    route = make_route(stub.base_url, json_schema=False)

    await provider.complete(route, chat(("system", "Be exact."), ("user", "Capital?"), json_schema=SCHEMA))

    body = stub.last.body
    assert body["generationConfig"]["responseMimeType"] == "application/json"
    assert "responseJsonSchema" not in body["generationConfig"]
    system_text = body["systemInstruction"]["parts"][0]["text"]
    assert system_text.startswith("Be exact.\n\n")
    assert json.dumps(SCHEMA, separators=(",", ":")) in system_text


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"promptFeedback": {"blockReason": "SAFETY"}, "usageMetadata": {"promptTokenCount": 5}}, "SAFETY"),
        ({"candidates": [], "usageMetadata": {"promptTokenCount": 5}}, "no candidates"),
    ],
)
async def test_blocked_prompts_are_filtered_and_not_retryable(
    stub: StubServer, provider: GeminiProvider, body: dict[str, Any], reason: str
) -> None:
    stub.reply(200, body)

    with pytest.raises(ContentFilteredError, match=reason) as caught:
        await provider.complete(make_route(stub.base_url), chat(("user", "something")))
    assert not caught.value.retryable


async def test_a_blocked_answer_reads_as_content_filter(stub: StubServer, provider: GeminiProvider) -> None:
    stub.reply(200, {"candidates": [{"finishReason": "PROHIBITED_CONTENT", "index": 0}], "usageMetadata": {}})

    reply = await provider.complete(make_route(stub.base_url), chat(("user", "something")))

    assert (reply.text, reply.finish_reason) == ("", "content_filter")


@pytest.mark.parametrize(
    ("status", "headers", "error"),
    [
        (429, {"retry-after": "12"}, RateLimitedError),
        (500, {}, TransientError),
        (503, {}, TransientError),
        (400, {}, PermanentModelError),
    ],
)
async def test_http_errors_map_to_gateway_errors(
    stub: StubServer, provider: GeminiProvider, status: int, headers: dict[str, str], error: type[Exception]
) -> None:
    stub.reply(status, {"error": {"code": status, "message": "nope", "status": "SOME_STATUS"}}, headers)

    with pytest.raises(error) as info:
        await provider.complete(make_route(stub.base_url), chat(("user", "hi")))

    if isinstance(info.value, RateLimitedError):
        assert info.value.retry_after == 12.0
    if isinstance(info.value, PermanentModelError):
        assert info.value.status == 400


async def test_missing_key_is_a_config_error_naming_the_variable(
    stub: StubServer, provider: GeminiProvider
) -> None:
    with pytest.raises(ConfigError, match=KEY_ENV):
        await provider.complete(make_route(stub.base_url, api_key=None), chat(("user", "hi")))
    assert stub.requests == []


@pytest.mark.parametrize(
    "body", [b"<html>502 Bad Gateway</html>", [1, 2], {"candidates": [{"content": "x"}]}]
)
async def test_malformed_success_body_is_transient(
    stub: StubServer, provider: GeminiProvider, body: Any
) -> None:
    stub.reply(200, body)

    with pytest.raises(TransientError, match="malformed"):
        await provider.complete(make_route(stub.base_url), chat(("user", "hi")))


async def test_provider_without_transport_opens_and_closes_its_own(stub: StubServer) -> None:
    stub.reply(200, gemini_body([{"text": "ok"}]))
    provider = GeminiProvider()

    reply = await provider.complete(make_route(stub.base_url), chat(("user", "hi")))
    assert provider._transport.open_connections == 1  # kept alive for the next call
    await provider.aclose()

    assert reply.text == "ok"
    assert provider._transport.open_connections == 0
