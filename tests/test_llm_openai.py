from typing import Any

import orjson
import pytest

from datamill.core.errors import ConfigError, PermanentModelError, RateLimitedError, TransientError
from datamill.llm.fake_server import FakeOpenAIServer, FakeResponse
from datamill.llm.http.transport import HttpTransport
from datamill.llm.providers import provider_class
from datamill.llm.providers.openai import OpenAIProvider, build_payload, parse_reply, reasoning_effort
from datamill.llm.types import ChatRequest, Message, Route

SCHEMA = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}


def _route(**fields: Any) -> Route:
    fields.setdefault("base_url", "http://127.0.0.1:9/v1")
    return Route(name="t/m", provider="openai", model="m", **fields)


def _request(**kwargs: Any) -> ChatRequest:
    return ChatRequest((Message("system", "be brief"), Message("user", "hi")), **kwargs)


def test_registry_resolves_the_openai_kind() -> None:
    assert provider_class("openai") is OpenAIProvider


def test_payload_carries_the_plain_parameters() -> None:
    payload = build_payload(_route(), _request(max_tokens=50, temperature=0.2, stop=("END",), seed=7))

    assert payload == {
        "model": "m",
        "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}],
        "temperature": 0.2,
        "max_tokens": 50,
        "stop": ["END"],
        "seed": 7,
    }


def test_payload_leaves_out_unset_optional_parameters() -> None:
    payload = build_payload(_route(), _request())

    assert set(payload) == {"model", "messages", "temperature"}


def test_native_json_schema_uses_response_format_json_schema_in_strict_mode() -> None:
    payload = build_payload(_route(), _request(json_schema=SCHEMA))

    assert payload["response_format"] == {
        "type": "json_schema",
        "json_schema": {
            "name": "output",
            "schema": {**SCHEMA, "additionalProperties": False},
            "strict": True,
        },
    }
    assert payload["messages"][0] == {"role": "system", "content": "be brief"}


def test_a_schema_without_a_strict_form_is_sent_without_strict() -> None:
    optional = {"type": "object", "properties": {"answer": {"type": "string"}, "note": {"type": "string"}}}
    payload = build_payload(_route(), _request(json_schema=optional))

    assert payload["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "output", "schema": optional},
    }


def test_without_native_schemas_it_asks_for_json_and_instructs() -> None:
    payload = build_payload(_route(json_schema=False), _request(json_schema=SCHEMA))
    bare = build_payload(_route(json_schema=False), ChatRequest((Message("user", "hi"),), json_schema=SCHEMA))

    assert payload["response_format"] == {"type": "json_object"}
    system = payload["messages"][0]
    assert system["role"] == "system"
    assert system["content"].startswith("be brief\n\n")
    assert '"required":["answer"]' in system["content"]
    assert bare["messages"][0]["role"] == "system"
    assert "JSON schema" in bare["messages"][0]["content"]
    assert len(bare["messages"]) == 2


@pytest.mark.parametrize(
    ("budget", "effort"), [(512, "low"), (1024, "low"), (4096, "medium"), (8193, "high")]
)
def test_reasoning_effort_follows_the_budget(budget: int, effort: str) -> None:
    assert reasoning_effort(budget) == effort


def test_thinking_routes_send_reasoning_effort_and_a_completion_cap() -> None:
    payload = build_payload(_route(thinking=True), _request(max_tokens=100, thinking_budget=16000))

    assert payload["reasoning_effort"] == "high"
    assert payload["max_completion_tokens"] == 16100
    assert "temperature" not in payload
    assert "max_tokens" not in payload


def _body(**usage: Any) -> bytes:
    return orjson.dumps(
        {
            "choices": [{"message": {"role": "assistant", "content": "hello"}, "finish_reason": "length"}],
            "usage": usage,
        }
    )


def test_reasoning_tokens_are_thinking_not_output() -> None:
    reply = parse_reply(
        _body(prompt_tokens=11, completion_tokens=30, completion_tokens_details={"reasoning_tokens": 12}),
        _route(),
    )

    assert reply.text == "hello"
    assert reply.finish_reason == "length"
    assert (reply.usage.input_tokens, reply.usage.output_tokens, reply.usage.thinking_tokens) == (11, 18, 12)


def test_missing_usage_counts_zero() -> None:
    reply = parse_reply(orjson.dumps({"choices": [{"message": {"content": None}}]}), _route())

    assert reply.text == ""
    assert reply.usage.total_tokens == 0
    assert reply.finish_reason is None


def test_content_parts_are_joined() -> None:
    parts = [
        {"type": "text", "text": "a"},
        {"type": "image_url", "image_url": {}},
        {"type": "text", "text": "b"},
    ]
    body = orjson.dumps({"choices": [{"message": {"content": parts}}]})

    assert parse_reply(body, _route()).text == "ab"


@pytest.mark.parametrize(
    "body",
    [b"not json", b"{}", b'{"choices": []}', b'{"choices": [{"message": {"content": 3}}]}', b"[1]"],
)
def test_malformed_bodies_are_transient(body: bytes) -> None:
    with pytest.raises(TransientError, match="t/m: malformed chat completion"):
        parse_reply(body, _route())


async def test_sends_the_bearer_key_and_route_headers() -> None:
    transport = HttpTransport()
    async with FakeOpenAIServer(reply="ok") as srv:
        route = Route(
            name="t/m",
            provider="openai",
            model="m",
            base_url=srv.base_url + "/",
            api_key_env="DATAMILL_TEST_OPENAI_KEY",
            api_key="sk-123",
            headers=(("X-Team", "data"),),
        )
        reply = await OpenAIProvider(transport).complete(route, _request())
    await transport.aclose()

    assert reply.text == "ok"
    assert srv.headers[0]["authorization"] == "Bearer sk-123"
    assert srv.headers[0]["x-team"] == "data"


async def test_no_key_variable_sends_no_authorization() -> None:
    async with FakeOpenAIServer() as srv:
        provider = OpenAIProvider()
        await provider.complete(_route(base_url=srv.base_url), _request())
        await provider.aclose()

    assert "authorization" not in srv.headers[0]


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        (FakeResponse(429, {"error": "slow down"}, {"Retry-After": "7"}), RateLimitedError),
        (FakeResponse(503, {"error": "busy"}), TransientError),
        (FakeResponse(408, {"error": "timeout"}), TransientError),
        (FakeResponse(404, {"error": "no such model"}), PermanentModelError),
    ],
)
async def test_http_errors_map_to_the_gateway_classes(answer: FakeResponse, error: type[Exception]) -> None:
    async with FakeOpenAIServer(reply=lambda body: answer) as srv:
        provider = OpenAIProvider()
        with pytest.raises(error) as caught:
            await provider.complete(_route(base_url=srv.base_url), _request())
        await provider.aclose()

    if isinstance(caught.value, RateLimitedError):
        assert caught.value.retry_after == 7.0


async def test_a_route_without_base_url_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="no base_url"):
        await OpenAIProvider().complete(_route(base_url=None), _request())
