"""AnthropicProvider against a loopback stub of the Messages API: request shape, reply parsing, errors."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from datamill.core.errors import ConfigError, PermanentModelError, RateLimitedError, TransientError
from datamill.llm.http.transport import HttpTransport
from datamill.llm.providers.anthropic import AnthropicProvider
from datamill.llm.types import ChatRequest, Message, Role, Route
from http_stubs import StubServer

KEY_ENV = "DATAMILL_TEST_ANTHROPIC_KEY"
SCHEMA = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}


@pytest.fixture
async def provider() -> AsyncIterator[AnthropicProvider]:
    transport = HttpTransport()
    yield AnthropicProvider(transport)
    await transport.aclose()


def make_route(base_url: str, **overrides: Any) -> Route:
    fields: dict[str, Any] = {
        "name": "anthropic/claude-sonnet-4-6",
        "provider": "anthropic",
        "model": "claude-sonnet-4-6",
        "base_url": base_url,
        "api_key_env": KEY_ENV,
        "api_key": "sk-ant-test",
    }
    fields.update(overrides)
    return Route(**fields)


def message_body(
    content: list[dict[str, Any]], stop_reason: str = "end_turn", **usage: int
) -> dict[str, Any]:
    return {
        "id": "msg_01",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-6",
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": {"input_tokens": 25, "output_tokens": 12, **usage},
    }


def chat(*messages: tuple[Role, str], **kwargs: Any) -> ChatRequest:
    return ChatRequest(messages=tuple(Message(role, text) for role, text in messages), **kwargs)


async def test_text_request_shape_and_reply(stub: StubServer, provider: AnthropicProvider) -> None:
    stub.reply(200, message_body([{"type": "text", "text": "Hello"}, {"type": "text", "text": " there"}]))
    request = chat(
        ("system", "Be brief."),
        ("system", "Use English."),
        ("user", "Hi"),
        ("assistant", "Hello!"),
        ("user", "Again"),
        temperature=0.2,
        stop=("END",),
        seed=7,
    )

    reply = await provider.complete(make_route(stub.base_url), request)

    seen = stub.last
    assert (seen.method, seen.path) == ("POST", "/v1/messages")
    assert seen.headers["x-api-key"] == "sk-ant-test"
    assert seen.headers["anthropic-version"] == "2023-06-01"
    assert seen.body == {
        "model": "claude-sonnet-4-6",
        "system": "Be brief.\n\nUse English.",
        "messages": [
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello!"},
            {"role": "user", "content": "Again"},
        ],
        "max_tokens": 1024,
        "temperature": 0.2,
        "stop_sequences": ["END"],
    }
    assert reply.text == "Hello there"
    assert (reply.usage.input_tokens, reply.usage.output_tokens, reply.usage.thinking_tokens) == (25, 12, 0)
    assert reply.finish_reason == "stop"


async def test_caps_temperature_merges_turns_and_sends_route_headers(
    stub: StubServer, provider: AnthropicProvider
) -> None:
    stub.reply(200, message_body([{"type": "text", "text": "ok"}], stop_reason="max_tokens"))
    route = make_route(stub.base_url, headers=(("anthropic-beta", "test-feature"),))
    request = chat(("user", "one"), ("user", "two"), max_tokens=50, temperature=1.6)

    reply = await provider.complete(route, request)

    body = stub.last.body
    assert body["messages"] == [{"role": "user", "content": "one\n\ntwo"}]
    assert body["max_tokens"] == 50
    assert body["temperature"] == 1.0
    assert "system" not in body
    assert stub.last.headers["anthropic-beta"] == "test-feature"
    assert reply.finish_reason == "length"


async def test_thinking_route(stub: StubServer, provider: AnthropicProvider) -> None:
    content = [
        {"type": "thinking", "thinking": "Let me work it out...", "signature": "sig"},
        {"type": "text", "text": "42"},
    ]
    stub.reply(200, message_body(content, output_tokens=900))
    route = make_route(stub.base_url, name="anthropic/claude-sonnet-4-6-thinking", thinking=True)

    reply = await provider.complete(route, chat(("user", "6*7?"), max_tokens=200, thinking_budget=4000))

    body = stub.last.body
    assert body["thinking"] == {"type": "enabled", "budget_tokens": 4000}
    assert body["max_tokens"] == 4200
    assert "temperature" not in body
    assert reply.text == "42"
    # Anthropic reports thinking inside output_tokens only.
    assert (reply.usage.output_tokens, reply.usage.thinking_tokens) == (900, 0)


async def test_thinking_route_uses_route_default_budget(
    stub: StubServer, provider: AnthropicProvider
) -> None:
    stub.reply(200, message_body([{"type": "text", "text": "ok"}]))
    route = make_route(stub.base_url, thinking=True, default_thinking_budget=3000)

    await provider.complete(route, chat(("user", "hi")))

    assert stub.last.body["thinking"] == {"type": "enabled", "budget_tokens": 3000}
    assert stub.last.body["max_tokens"] == 3000 + 1024


async def test_json_schema_forces_output_tool(stub: StubServer, provider: AnthropicProvider) -> None:
    tool_use = {"type": "tool_use", "id": "toolu_01", "name": "output", "input": {"answer": "Paris"}}
    stub.reply(200, message_body([tool_use], stop_reason="tool_use"))

    reply = await provider.complete(
        make_route(stub.base_url), chat(("user", "Capital of France?"), json_schema=SCHEMA)
    )

    body = stub.last.body
    [tool] = body["tools"]
    assert (tool["name"], tool["input_schema"]) == ("output", SCHEMA)
    assert tool["description"]
    assert body["tool_choice"] == {"type": "tool", "name": "output"}
    assert json.loads(reply.text) == {"answer": "Paris"}
    assert reply.finish_reason == "stop"


async def test_non_object_schema_is_wrapped_and_unwrapped(
    stub: StubServer, provider: AnthropicProvider
) -> None:
    schema = {"type": "array", "items": {"type": "integer"}}
    tool_use = {"type": "tool_use", "id": "toolu_01", "name": "output", "input": {"value": [1, 2, 3]}}
    stub.reply(200, message_body([tool_use], stop_reason="tool_use"))

    reply = await provider.complete(
        make_route(stub.base_url), chat(("user", "Three numbers"), json_schema=schema)
    )

    input_schema = stub.last.body["tools"][0]["input_schema"]
    assert input_schema == {"type": "object", "properties": {"value": schema}, "required": ["value"]}
    assert json.loads(reply.text) == [1, 2, 3]


async def test_json_schema_with_thinking_asks_in_system_prompt(
    stub: StubServer, provider: AnthropicProvider
) -> None:
    stub.reply(200, message_body([{"type": "text", "text": '{"answer": "Paris"}'}]))
    route = make_route(stub.base_url, thinking=True)

    reply = await provider.complete(
        route, chat(("system", "Be exact."), ("user", "Capital?"), json_schema=SCHEMA)
    )

    body = stub.last.body
    assert "tools" not in body
    assert "tool_choice" not in body
    assert body["system"].startswith("Be exact.\n\n")
    assert json.dumps(SCHEMA, separators=(",", ":")) in body["system"]
    assert json.loads(reply.text) == {"answer": "Paris"}


@pytest.mark.parametrize(
    ("status", "headers", "error"),
    [
        (429, {"retry-after": "7"}, RateLimitedError),
        (500, {}, TransientError),
        (529, {}, TransientError),
        (400, {}, PermanentModelError),
    ],
)
async def test_http_errors_map_to_gateway_errors(
    stub: StubServer,
    provider: AnthropicProvider,
    status: int,
    headers: dict[str, str],
    error: type[Exception],
) -> None:
    stub.reply(status, {"type": "error", "error": {"type": "some_error", "message": "nope"}}, headers)

    with pytest.raises(error) as info:
        await provider.complete(make_route(stub.base_url), chat(("user", "hi")))

    if isinstance(info.value, RateLimitedError):
        assert info.value.retry_after == 7.0
    if isinstance(info.value, PermanentModelError):
        assert info.value.status == 400


async def test_missing_key_is_a_config_error_naming_the_variable(
    stub: StubServer, provider: AnthropicProvider
) -> None:
    with pytest.raises(ConfigError, match=KEY_ENV):
        await provider.complete(make_route(stub.base_url, api_key=None), chat(("user", "hi")))
    assert stub.requests == []


@pytest.mark.parametrize("body", [b"<html>502 Bad Gateway</html>", {"type": "message", "usage": {}}, [1, 2]])
async def test_malformed_success_body_is_transient(
    stub: StubServer, provider: AnthropicProvider, body: Any
) -> None:
    stub.reply(200, body)

    with pytest.raises(TransientError, match="malformed"):
        await provider.complete(make_route(stub.base_url), chat(("user", "hi")))


async def test_provider_without_transport_opens_and_closes_its_own(stub: StubServer) -> None:
    stub.reply(200, message_body([{"type": "text", "text": "ok"}]))
    provider = AnthropicProvider()

    reply = await provider.complete(make_route(stub.base_url), chat(("user", "hi")))
    assert provider._transport.open_connections == 1  # kept alive for the next call
    await provider.aclose()

    assert reply.text == "ok"
    assert provider._transport.open_connections == 0
