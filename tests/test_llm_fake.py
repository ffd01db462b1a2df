import asyncio
import math
import subprocess
import sys
from typing import Any

import aiohttp
import orjson
import pytest
from jsonschema import Draft202012Validator

from datamill.llm.fake_server import FakeOpenAIServer, FakeResponse
from datamill.llm.providers import provider_class
from datamill.llm.providers.fake import FakeProvider, default_reply, fake_value
from datamill.llm.types import ChatRequest, Message, Route

ROUTE = Route(name="fake/m", provider="fake", model="m")


def _request(text: str = "Rewrite   this\nsentence, please.", **kwargs: Any) -> ChatRequest:
    return ChatRequest((Message("system", "You are terse."), Message("user", text)), **kwargs)


def test_registry_resolves_the_fake_kind() -> None:
    assert provider_class("fake") is FakeProvider


async def test_text_reply_is_derived_from_the_last_user_message() -> None:
    provider = FakeProvider()

    reply = await provider.complete(ROUTE, _request())

    assert reply.text == "[fake] Rewrite this sentence, please."
    assert reply.usage.input_tokens == math.ceil(
        (len("You are terse.") + len(_request().messages[1].content)) / 4
    )
    assert reply.usage.output_tokens == math.ceil(len(reply.text) / 4)
    assert reply.usage.thinking_tokens == 0
    assert provider.calls == [_request()]


async def test_a_long_run_keeps_only_the_latest_requests() -> None:
    provider = FakeProvider()
    total = 2 * FakeProvider.KEPT_CALLS + 500
    for i in range(total):
        await provider.complete(ROUTE, _request(f"question {i}"))
    assert provider.call_count == total
    assert FakeProvider.KEPT_CALLS <= len(provider.calls) < 2 * FakeProvider.KEPT_CALLS
    assert provider.calls[-1] == _request(f"question {total - 1}")
    assert provider.calls[0] == _request(f"question {total - len(provider.calls)}")


def test_long_text_is_cut_to_200_characters() -> None:
    assert default_reply(_request("x" * 500)) == "[fake] " + "x" * 200


async def test_thinking_routes_report_thinking_tokens_within_the_budget() -> None:
    reply = await FakeProvider().complete(
        Route("fake/m", "fake", "m", thinking=True), _request(thinking_budget=3)
    )

    assert reply.usage.thinking_tokens == 3


async def test_a_responder_scripts_the_reply() -> None:
    provider = FakeProvider(responder=lambda route, request: f"{route.model}:{len(request.messages)}")

    reply = await provider.complete(ROUTE, _request())

    assert reply.text == "m:2"


SCHEMAS: list[dict[str, Any]] = [
    {
        "type": "object",
        "properties": {
            "score": {"type": "integer", "minimum": 1, "maximum": 5},
            "label": {"enum": ["good", "bad"]},
            "ratio": {"type": "number", "exclusiveMinimum": 0},
            "tags": {"type": "array", "items": {"type": "string", "minLength": 30}, "minItems": 2},
            "ok": {"type": "boolean"},
            "note": {"type": ["string", "null"], "maxLength": 5},
            "when": {"type": "string", "format": "date-time"},
            "kind": {"const": "row"},
        },
        "required": ["score", "label", "ratio", "tags", "ok", "note", "when", "kind"],
        "additionalProperties": False,
    },
    {
        "$defs": {
            "pair": {"type": "object", "properties": {"chosen": {"type": "string"}}, "required": ["chosen"]}
        },
        "type": "array",
        "items": {"$ref": "#/$defs/pair"},
        "minItems": 3,
    },
    {"anyOf": [{"type": "integer", "maximum": -2}, {"type": "string"}]},
    {"type": "object", "required": ["undeclared"]},
    {"type": "array", "prefixItems": [{"type": "integer"}, {"type": "string"}], "minItems": 1},
]


@pytest.mark.parametrize("schema", SCHEMAS)
def test_schema_replies_validate_and_are_deterministic(schema: dict[str, Any]) -> None:
    request = _request(json_schema=schema)

    text = default_reply(request)

    Draft202012Validator(schema).validate(orjson.loads(text))
    assert default_reply(request) == text


def test_strings_depend_on_the_prompt() -> None:
    schema = {"type": "object", "properties": {"answer": {"type": "string"}}}

    first = fake_value(schema, "aaaa1111")
    second = default_reply(_request("another prompt", json_schema=schema))

    assert first == {"answer": "answer-aaaa1111"}
    assert second != default_reply(_request("a third prompt", json_schema=schema))


async def test_latency_is_simulated_without_blocking_others() -> None:
    provider = FakeProvider(latency_s=0.05)

    replies = await asyncio.gather(*(provider.complete(ROUTE, _request(str(i))) for i in range(20)))

    assert [r.text for r in replies] == [f"[fake] {i}" for i in range(20)]


async def _post(session: aiohttp.ClientSession, url: str, body: Any) -> tuple[int, dict[str, str], Any]:
    async with session.post(url + "/chat/completions", json=body) as resp:
        return resp.status, dict(resp.headers), await resp.json(content_type=None)


async def test_server_answers_chat_completions_and_records_them() -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": "abcdefgh"}]}
    async with FakeOpenAIServer(reply="pong", reasoning_tokens=4) as srv, aiohttp.ClientSession() as session:
        status, _, data = await _post(session, srv.base_url, body)

    assert srv.base_url.startswith("http://127.0.0.1:")
    assert srv.base_url.endswith("/v1")
    assert status == 200
    assert data["choices"][0]["message"]["content"] == "pong"
    assert data["usage"]["prompt_tokens"] == 2
    assert data["usage"]["completion_tokens"] == 1 + 4
    assert data["usage"]["completion_tokens_details"]["reasoning_tokens"] == 4
    assert srv.requests == [body]
    assert srv.count == 1


async def test_server_scripted_failures_and_rate_limits() -> None:
    body = {"model": "m", "messages": []}
    async with (
        FakeOpenAIServer(fail_first=1, max_concurrent=1, retry_after_s=2.5, latency_s=0.2) as srv,
        aiohttp.ClientSession() as session,
    ):
        first = await _post(session, srv.base_url, body)
        slow = asyncio.create_task(_post(session, srv.base_url, body))
        await srv.wait_for_requests(2)
        limited = await _post(session, srv.base_url, body)
        second = await slow

    assert first[0] == 500
    assert limited[0] == 429
    assert limited[1]["Retry-After"] == "2.5"
    assert second[0] == 200
    assert srv.statuses == {500: 1, 429: 1, 200: 1}


async def test_a_reply_callable_can_answer_anything() -> None:
    def reply(body: dict[str, Any]) -> FakeResponse:
        return FakeResponse(418, {"teapot": body["model"]}, {"X-Why": "scripted"})

    async with FakeOpenAIServer(reply=reply) as srv, aiohttp.ClientSession() as session:
        status, headers, data = await _post(session, srv.base_url, {"model": "tea"})

    assert (status, headers["X-Why"], data) == (418, "scripted", {"teapot": "tea"})


async def test_hanging_requests_are_released_when_the_server_stops() -> None:
    srv = FakeOpenAIServer(hang_first=1)
    await srv.start()
    session = aiohttp.ClientSession()
    pending = asyncio.create_task(_post(session, srv.base_url, {"model": "m"}))
    await srv.wait_for_requests(1)

    await asyncio.wait_for(srv.stop(), timeout=10)

    try:
        status: int | None = (await asyncio.wait_for(pending, timeout=10))[0]
    except aiohttp.ClientError:
        status = None  # the connection was closed instead of answered: also a release
    await session.close()
    assert status in (503, None)


def test_the_server_runs_as_a_module() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "datamill.llm.fake_server", "--port", "0", "--latency", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("fake OpenAI server listening on http://127.0.0.1:")
        base_url = line.rsplit(" ", 1)[1].strip()

        async def ask() -> Any:
            async with aiohttp.ClientSession() as session:
                return (await _post(session, base_url, {"model": "m", "messages": []}))[2]

        data = asyncio.run(ask())
        assert data["choices"][0]["message"]["content"] == "fake reply"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        if proc.stdout is not None:
            proc.stdout.close()
