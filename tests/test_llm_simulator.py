"""The provider simulator, exercised through datamill's own providers and gateway over loopback HTTP."""

from __future__ import annotations

import asyncio
import os
import sys
from typing import Any

import httpx
import orjson
import pytest

from datamill.core.errors import (
    ContentFilteredError,
    EmptyReplyError,
    PermanentModelError,
    QuotaExhaustedError,
    RateLimitedError,
    RefusalError,
    TransientError,
    TruncatedReplyError,
)
from datamill.llm.gateway import Gateway
from datamill.llm.retry import RetryPolicy
from datamill.llm.routing import Routing
from datamill.llm.simulator import REFUSAL_FIELD, REFUSAL_TEXT, ProviderSimulator, WireRequest
from datamill.llm.types import ChatRequest, Message

APIS = ("openai", "anthropic", "gemini")
SCHEMA = {
    "type": "object",
    "properties": {"answer": {"type": "string"}, "score": {"type": "integer", "minimum": 1}},
    "required": ["answer", "score"],
}
NO_RETRY = RetryPolicy(max_attempts=1, max_rate_limit_retries=0, max_reply_attempts=1)
FAST = RetryPolicy(
    max_attempts=4, base_delay=0.001, max_delay=0.005, max_rate_limit_retries=3, max_retry_after=0.01
)


def _gateway(sim: ProviderSimulator, *, retry: RetryPolicy = NO_RETRY, **fields: Any) -> Gateway:
    return Gateway(Routing.from_dict(sim.routes(**fields)), retry=retry, repair_attempts=0)


def _text(text: str = "Name three rivers in Spain.", **kwargs: Any) -> ChatRequest:
    return ChatRequest((Message("system", "You are a geography teacher."), Message("user", text)), **kwargs)


def _json(text: str = "Grade this answer.", **kwargs: Any) -> ChatRequest:
    return _text(text, json_schema=SCHEMA, **kwargs)


async def test_clean_text_answers_echo_the_last_user_turn_on_every_api() -> None:
    async with ProviderSimulator() as sim, _gateway(sim) as gateway:
        results = [await gateway.chat(f"sim-{api}/m1", _text(f"Question for {api}?")) for api in APIS]

    assert [r.text for r in results] == [f"[sim] Question for {api}?" for api in APIS]
    assert [r.finish_reason for r in results] == ["stop"] * 3
    assert [e.api for e in sim.log] == list(APIS)
    assert [e.path for e in sim.log] == [
        "/v1/chat/completions",
        "/v1/messages",
        "/v1beta/models/m1:generateContent",
    ]
    for entry in sim.log:
        assert entry.status == 200
        assert entry.behaviour is None
        assert entry.model == "m1"
        assert "You are a geography teacher." in entry.prompt
        assert entry.text is not None
        assert entry.text.startswith("[sim] Question for")
    assert sim.log.entries[1].headers["anthropic-version"] == "2023-06-01"
    assert sim.log.entries[0].body["messages"][0] == {
        "role": "system",
        "content": "You are a geography teacher.",
    }


@pytest.mark.parametrize("api", APIS)
@pytest.mark.parametrize("native", [True, False])
async def test_json_requests_get_a_value_matching_the_schema(api: str, native: bool) -> None:
    async with ProviderSimulator() as sim, _gateway(sim, json_schema=native) as gateway:
        result = await gateway.chat(f"sim-{api}/m", _json())
        again = await gateway.chat(f"sim-{api}/m", _json())

    assert set(result.data) == {"answer", "score"}
    assert result.data["score"] == 1
    assert again.data == result.data  # deterministic: the same request, the same answer
    body = sim.log.entries[0].body
    if api == "anthropic" and native:
        assert body["tool_choice"] == {"type": "tool", "name": "output"}


async def test_usage_billed_is_what_the_gateway_counts() -> None:
    async with ProviderSimulator() as sim, _gateway(sim, input_price=3.0, output_price=15.0) as gateway:
        results = [
            await gateway.chat(f"sim-{api}/m", _text(f"q{i} " * (i + 1))) for api in APIS for i in range(3)
        ]

    billed = sim.log.billed()
    assert billed.input_tokens == sum(r.usage.input_tokens for r in results) > 0
    assert billed.output_tokens == sum(r.usage.output_tokens for r in results) > 0
    assert billed.cost_usd(3.0, 15.0) == pytest.approx(sum(r.cost_usd for r in results))
    for entry, result in zip(sim.log, results, strict=True):
        assert entry.billed is not None
        assert entry.billed.input_tokens == result.usage.input_tokens


# ---- content behaviours -----------------------------------------------------------------------------------


@pytest.mark.parametrize("api", APIS)
async def test_refusal_text(api: str) -> None:
    async with ProviderSimulator(rates={"refusal_text": 1.0}) as sim, _gateway(sim) as gateway:
        with pytest.raises(RefusalError, match="the model refused"):
            await gateway.chat(f"sim-{api}/m", _text())

    assert sim.log.entries[0].behaviour == "refusal_text"
    assert sim.log.quirk_texts() == {REFUSAL_TEXT}


async def test_native_refusals() -> None:
    async with ProviderSimulator(rates={"refusal_field": 1.0}) as sim, _gateway(sim) as gateway:
        for api in APIS:
            with pytest.raises(RefusalError, match="the model refused"):
                await gateway.chat(f"sim-{api}/m", _text())
        first = orjson.loads(await _raw(sim, "openai"))["choices"][0]["message"]

    assert first["content"] is None
    assert first["refusal"] == REFUSAL_FIELD
    assert sim.log.entries[0].text == REFUSAL_FIELD


@pytest.mark.parametrize("api", APIS)
async def test_truncation_cuts_the_answer_and_says_so(api: str) -> None:
    async with ProviderSimulator() as sim, _gateway(sim) as gateway:
        clean = await gateway.chat(f"sim-{api}/m", _text(max_tokens=50))
        sim.set("truncation", 1.0)
        with pytest.raises(TruncatedReplyError, match="cut off at the token limit"):
            await gateway.chat(f"sim-{api}/m", _text("Name three rivers in Spain!", max_tokens=50))

    assert clean.finish_reason == "stop"
    cut = sim.log.entries[1].text
    assert cut is not None
    assert 0 < len(cut) < len(clean.text)
    assert "[sim] Name three rivers".startswith(cut[:20])
    assert sim.log.entries[1].billed is not None
    assert sim.log.entries[1].billed.output_tokens == 50


async def test_truncated_forced_tool_call_has_empty_arguments() -> None:
    async with ProviderSimulator(rates={"truncation": 1.0}) as sim, _gateway(sim) as gateway:
        with pytest.raises(TruncatedReplyError):
            await gateway.chat("sim-anthropic/m", _json())

    assert sim.log.entries[0].body["tool_choice"]["name"] == "output"


@pytest.mark.parametrize("api", APIS)
async def test_think_tags_come_before_the_answer(api: str) -> None:
    async with ProviderSimulator(rates={"think": 1.0}) as sim, _gateway(sim) as gateway:
        result = await gateway.chat(f"sim-{api}/m", _text())
    raw = sim.log.entries[0].text

    assert result.text == "[sim] Name three rivers in Spain."
    assert result.reasoning is not None
    assert result.reasoning.startswith("The user asks: Name three rivers in Spain.")
    assert raw is not None
    assert raw.startswith("<think>\nThe user asks")


@pytest.mark.parametrize("api", APIS)
async def test_native_reasoning_is_beside_a_clean_answer(api: str) -> None:
    async with ProviderSimulator(rates={"reasoning_field": 1.0}) as sim, _gateway(sim) as gateway:
        result = await gateway.chat(f"sim-{api}/m", _text())
        raw = orjson.loads(await _raw(sim, api))

    assert result.text == "[sim] Name three rivers in Spain."
    if api == "openai":
        assert raw["choices"][0]["message"]["reasoning_content"].startswith("The user asks")
    elif api == "anthropic":
        assert [b["type"] for b in raw["content"]] == ["thinking", "text"]
    else:
        assert raw["candidates"][0]["content"]["parts"][0]["thought"] is True


@pytest.mark.parametrize("api", APIS)
async def test_fenced_json_and_json_in_prose(api: str) -> None:
    async with (
        ProviderSimulator(rates={"json_fence": 1.0}) as sim,
        _gateway(sim, json_schema=False) as gateway,
    ):
        fenced = await gateway.chat(f"sim-{api}/m", _json())
        sim.set_rates(prose_json=1.0)
        in_prose = await gateway.chat(f"sim-{api}/m", _json("Grade this other answer."))

    assert fenced.text.startswith("```json\n{")
    assert fenced.text.endswith("}\n```")
    assert set(fenced.data) == {"answer", "score"}
    prose = sim.log.entries[1].text
    assert prose is not None
    assert prose.startswith("Sure! Here is the JSON")
    assert '"score":1' in prose
    assert set(in_prose.data) == {"answer", "score"}
    assert len(sim.log) == 2  # no repair call


async def test_fences_do_not_apply_to_forced_tool_calls() -> None:
    async with ProviderSimulator(rates={"json_fence": 1.0}) as sim, _gateway(sim) as gateway:
        result = await gateway.chat("sim-anthropic/m", _json())

    assert set(result.data) == {"answer", "score"}
    assert sim.log.entries[0].behaviour is None


@pytest.mark.parametrize("api", APIS)
async def test_empty_content(api: str) -> None:
    async with ProviderSimulator(rates={"empty": 1.0}) as sim, _gateway(sim) as gateway:
        with pytest.raises(EmptyReplyError, match="empty reply"):
            await gateway.chat(f"sim-{api}/m", _text())

    assert sim.log.entries[0].behaviour == "empty"


async def test_content_filter_in_each_format() -> None:
    async with ProviderSimulator(rates={"content_filter": 1.0}) as sim, _gateway(sim) as gateway:
        for api in ("openai", "gemini"):
            with pytest.raises(ContentFilteredError, match="content filter"):
                await gateway.chat(f"sim-{api}/m", _text())
        # Anthropic's only safety stop is the `refusal` stop reason.
        with pytest.raises(RefusalError, match="the model refused"):
            await gateway.chat("sim-anthropic/m", _text())
        gemini = orjson.loads(await _raw(sim, "gemini"))["candidates"][0]

    assert gemini["finishReason"] == "SAFETY"
    assert "content" not in gemini


# ---- HTTP-level behaviours --------------------------------------------------------------------------------


async def test_overloaded_is_a_529_on_anthropic_and_503_elsewhere() -> None:
    async with ProviderSimulator(rates={"overloaded": 1.0}) as sim, _gateway(sim) as gateway:
        for api in APIS:
            with pytest.raises(TransientError, match="overloaded"):
                await gateway.chat(f"sim-{api}/m", _text())

    assert [e.status for e in sim.log] == [503, 529, 503]
    assert sim.log.entries[1].billed is None


async def test_rate_limit_sends_retry_after_and_the_providers_headers() -> None:
    async with ProviderSimulator(rates={"rate_limit": 1.0}, retry_after_s=7) as sim:
        replies = {api: await _post(sim, api) for api in APIS}
        async with _gateway(sim) as gateway:
            with pytest.raises(RateLimitedError) as caught:
                await gateway.chat("sim-openai/m", _text())

    assert caught.value.retry_after == 7
    openai, anthropic, gemini = replies["openai"], replies["anthropic"], replies["gemini"]
    assert openai.status_code == anthropic.status_code == gemini.status_code == 429
    assert openai.headers["retry-after"] == "7"
    assert openai.headers["x-ratelimit-remaining-requests"] == "0"
    assert openai.json()["error"]["code"] == "rate_limit_exceeded"
    assert anthropic.headers["anthropic-ratelimit-requests-remaining"] == "0"
    assert anthropic.json()["error"]["type"] == "rate_limit_error"
    assert "retry-after" not in gemini.headers
    details = gemini.json()["error"]["details"]
    assert {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "7s"} in details


async def test_insufficient_quota_and_bad_requests() -> None:
    async with ProviderSimulator(rates={"insufficient_quota": 1.0}) as sim:
        quota = {api: await _post(sim, api) for api in APIS}
        async with _gateway(sim, retry=FAST) as gateway:
            for api in APIS:
                with pytest.raises(QuotaExhaustedError, match="no quota or credit left"):
                    await gateway.chat(f"sim-{api}/m", _text())
        asked = len(sim.log)
        sim.set_rates(bad_request=1.0)
        async with _gateway(sim) as gateway:
            for api in APIS:
                with pytest.raises(PermanentModelError) as caught:
                    await gateway.chat(f"sim-{api}/m", _text())
                assert caught.value.status == 400

    assert quota["openai"].status_code == 429
    assert quota["openai"].json()["error"]["type"] == "insufficient_quota"
    assert quota["anthropic"].status_code == 400
    assert "credit balance" in quota["anthropic"].text
    assert quota["gemini"].status_code == 429
    assert "RetryInfo" not in quota["gemini"].text
    assert asked == 6  # three raw posts, then one call per API: a quota that will not clear is not retried


async def test_server_errors_and_resets_are_retried_and_resets_are_billed() -> None:
    async with ProviderSimulator() as sim, _gateway(sim, retry=FAST) as gateway:
        sim.set("server_error", 1.0)
        with pytest.raises(TransientError, match="HTTP 500"):
            await gateway.chat("sim-openai/m", _text())
        sim.set_rates(reset=1.0)
        with pytest.raises(TransientError):
            await gateway.chat("sim-anthropic/m", _text())

    assert [e.attempt for e in sim.log] == [1, 2, 3, 4] * 2
    resets = sim.log.with_behaviour("reset")
    assert len(resets) == 4
    assert all(e.billed is not None and e.billed.output_tokens > 0 for e in resets)
    assert sim.log.billed().input_tokens == sum(e.billed.input_tokens for e in resets if e.billed)


async def test_a_slow_first_byte_runs_into_the_route_timeout() -> None:
    sim = ProviderSimulator(rates={"slow_first_byte": 1.0}, slow_first_byte_s=0.5)
    async with sim, _gateway(sim, timeout_s=0.1) as gateway:
        with pytest.raises(TransientError):
            await gateway.chat("sim-gemini/m", _text())
        sim.slow_first_byte_s = 0.01
        result = await gateway.chat("sim-gemini/m", _text())

    assert result.text == "[sim] Name three rivers in Spain."


# ---- rates, seeds, predicates -----------------------------------------------------------------------------


async def test_rates_are_drawn_per_request_and_reproducible() -> None:
    async def behaviours(order: list[int]) -> dict[int, str | None]:
        sim = ProviderSimulator(rates={"refusal_text": 0.3, "empty": 0.1}, seed=5)
        async with sim, _gateway(sim) as gateway:
            calls = (gateway.chat("sim-openai/m", _text(f"row {i}")) for i in order)
            await asyncio.gather(*calls, return_exceptions=True)
        return {int(e.body["messages"][1]["content"].split()[1]): e.behaviour for e in sim.log}

    forward = await behaviours(list(range(200)))
    backward = await behaviours(list(range(199, -1, -1)))
    assert forward == backward
    refusals = sum(1 for b in forward.values() if b == "refusal_text")
    assert 40 <= refusals <= 80
    assert 8 <= sum(1 for b in forward.values() if b == "empty") <= 35


async def test_a_retried_request_draws_again() -> None:
    async with (
        ProviderSimulator(rates={"server_error": 0.2}, seed=3) as sim,
        _gateway(sim, retry=FAST) as gateway,
    ):
        results = await asyncio.gather(*(gateway.chat("sim-openai/m", _text(f"row {i}")) for i in range(40)))

    assert all(r.text.startswith("[sim] row ") for r in results)
    assert max(e.attempt for e in sim.log) >= 2
    assert sim.log.with_behaviour("server_error")


async def test_a_behaviour_can_be_limited_to_some_requests() -> None:
    def completion(request: WireRequest) -> bool:
        return request.mentions("COMPLETE:")

    async with ProviderSimulator() as sim, _gateway(sim) as gateway:
        sim.set("refusal_text", 1.0, when=completion)
        other = await gateway.chat("sim-openai/m", _text("REPHRASE: hi"))
        with pytest.raises(RefusalError):
            await gateway.chat("sim-openai/m", _text("COMPLETE: hi"))

    assert other.text == "[sim] REPHRASE: hi"
    assert sim.log.entries[1].text == REFUSAL_TEXT


def test_rates_are_checked() -> None:
    with pytest.raises(ValueError, match="unknown simulator behaviour 'nope'"):
        ProviderSimulator(rates={"nope": 0.1})
    with pytest.raises(ValueError, match="may not exceed 1"):
        ProviderSimulator(rates={"empty": 0.6, "think": 0.6})


# ---- budgets and caching ----------------------------------------------------------------------------------


async def test_requests_per_minute_budget_answers_429_with_headers() -> None:
    async with ProviderSimulator(requests_per_minute=2) as sim:
        replies = [await _post(sim, "openai", f"q{i}") for i in range(3)]

    assert [r.status_code for r in replies] == [200, 200, 429]
    assert replies[0].headers["x-ratelimit-limit-requests"] == "2"
    assert replies[1].headers["x-ratelimit-remaining-requests"] == "0"
    assert 55 <= float(replies[2].headers["retry-after"]) <= 60
    assert sim.log.entries[2].behaviour == "budget"


async def test_tokens_per_minute_budget_counts_prompt_and_cap() -> None:
    async with ProviderSimulator(tokens_per_minute=1000, window_s=0.5) as sim:
        first = await _post(sim, "anthropic", "x" * 2000, max_tokens=400)  # 500 + 400 tokens
        second = await _post(sim, "anthropic", "y" * 2000, max_tokens=400)
        await asyncio.sleep(0.6)
        third = await _post(sim, "anthropic", "z" * 2000, max_tokens=400)

    assert [first.status_code, second.status_code, third.status_code] == [200, 429, 200]
    assert int(first.headers["anthropic-ratelimit-tokens-remaining"]) < 100
    assert second.json()["error"]["type"] == "rate_limit_error"


async def test_rate_limit_headers_report_the_budget_at_admission() -> None:
    async with ProviderSimulator(requests_per_minute=10, latency_s=0.3) as sim:
        first = asyncio.create_task(_post(sim, "openai", "q1"))
        await asyncio.sleep(0.1)  # the first is admitted and waiting out its latency
        second = await _post(sim, "openai", "q2")
        answered = await first

    assert answered.headers["x-ratelimit-remaining-requests"] == "9"  # not 8: q2 came after its admission
    assert second.headers["x-ratelimit-remaining-requests"] == "8"


async def test_prompt_caching_fills_each_providers_usage_fields() -> None:
    blueprint = "Blueprint. " * 600  # ~1,650 tokens shared by both requests
    async with ProviderSimulator() as sim:
        openai = [
            await _post(sim, "openai", "q1", system=blueprint),
            await _post(sim, "openai", "q2", system=blueprint),
        ]
        gemini = [
            await _post(sim, "gemini", "q1", system=blueprint),
            await _post(sim, "gemini", "q2", system=blueprint),
        ]
        marked = [{"type": "text", "text": blueprint, "cache_control": {"type": "ephemeral"}}]
        anthropic = [await _post(sim, "anthropic", q, system=marked) for q in ("q1", "q2")]
        plain = await _post(sim, "anthropic", "q3", system=blueprint)

    assert openai[0].json()["usage"]["prompt_tokens_details"]["cached_tokens"] == 0
    cached = openai[1].json()["usage"]["prompt_tokens_details"]["cached_tokens"]
    assert cached >= 1024
    assert cached % 128 == 0
    assert cached <= openai[1].json()["usage"]["prompt_tokens"]
    assert "cachedContentTokenCount" not in gemini[0].json()["usageMetadata"]
    assert gemini[1].json()["usageMetadata"]["cachedContentTokenCount"] >= 1024
    write, read = anthropic[0].json()["usage"], anthropic[1].json()["usage"]
    assert write["cache_creation_input_tokens"] >= 1024
    assert write["cache_read_input_tokens"] == 0
    assert read["cache_read_input_tokens"] == write["cache_creation_input_tokens"]
    assert read["cache_creation_input_tokens"] == 0
    assert read["input_tokens"] < 10
    assert plain.json()["usage"]["cache_read_input_tokens"] == 0  # no cache_control, no caching
    billed = sim.log.entries[5].billed
    assert billed is not None
    assert billed.cached_input_tokens == read["cache_read_input_tokens"]
    assert billed.cost_usd(3.0, 15.0, cached_input_price=0.3) < billed.cost_usd(3.0, 15.0)


# ---- malformed requests, runtime controls, the command line -----------------------------------------------


async def test_malformed_requests_get_the_providers_400() -> None:
    async with ProviderSimulator() as sim, httpx.AsyncClient() as client:
        no_cap = await client.post(
            sim.base_url + "/v1/messages",
            json={"model": "m", "messages": [{"role": "user", "content": "hi"}]},
            headers={"anthropic-version": "2023-06-01"},
        )
        not_json = await client.post(sim.openai_url + "/chat/completions", content=b"{nope")

    assert no_cap.status_code == 400
    assert no_cap.json()["error"]["type"] == "invalid_request_error"
    assert "max_tokens" in no_cap.json()["error"]["message"]
    assert not_json.status_code == 400
    assert sim.log.entries[1].body is None


async def test_behaviours_and_log_over_http() -> None:
    async with ProviderSimulator() as sim, httpx.AsyncClient(base_url=sim.base_url) as client:
        put = await client.put("/_sim/behaviours", json={"rates": {"empty": 1.0}})
        await _post(sim, "openai")
        log = (await client.get("/_sim/log")).json()["entries"]
        stats = (await client.get("/_sim/stats")).json()
        bad = await client.put("/_sim/behaviours", json={"rates": {"nope": 1}})
        await client.delete("/_sim/log")

    assert put.json() == {"rates": {"empty": 1.0}}
    assert log[0]["behaviour"] == "empty"
    assert log[0]["billed"]["input_tokens"] > 0
    assert stats["behaviours"] == {"empty": 1}
    assert stats["statuses"] == {"200": 1}
    assert bad.status_code == 400
    assert "nope" in bad.text
    assert len(sim.log) == 0


async def test_routes_file_reaches_the_simulator(tmp_path: Any) -> None:
    async with ProviderSimulator() as sim:
        path = sim.write_routes(tmp_path / "routes.yaml", input_price=2.0)
        async with Gateway(Routing.load(path), retry=NO_RETRY) as gateway:
            result = await gateway.chat("sim-gemini/flash", _text())

    assert result.text.startswith("[sim] ")
    assert result.cost_usd > 0
    assert sim.log.entries[0].path == "/v1beta/models/flash:generateContent"


async def test_runs_standalone_from_the_command_line(tmp_path: Any) -> None:
    log_file = tmp_path / "log.jsonl"
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "datamill.llm.simulator",
        "--port",
        "0",
        "--rate",
        "refusal_text=1",
        "--log-file",
        str(log_file),
        stdout=asyncio.subprocess.PIPE,
        env=dict(os.environ),
    )
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
        base = line.split(" on ")[1].split()[0]
        async with httpx.AsyncClient() as client:
            reply = await client.post(
                base + "/v1/chat/completions",
                json={"model": "m", "messages": [{"role": "user", "content": "hi"}]},
            )
    finally:
        proc.terminate()
        await proc.wait()

    assert reply.json()["choices"][0]["message"]["content"] == REFUSAL_TEXT
    assert orjson.loads(log_file.read_bytes().splitlines()[0])["behaviour"] == "refusal_text"


# ---- helpers ----------------------------------------------------------------------------------------------


async def _raw(sim: ProviderSimulator, api: str) -> bytes:
    """Replay the first logged request of ``api`` (the same request: its next attempt)."""
    entry = next(e for e in sim.log if e.api == api)
    async with httpx.AsyncClient() as client:
        reply = await client.post(
            sim.base_url + entry.path, content=orjson.dumps(entry.body), headers=_HEADERS
        )
    return reply.content


_HEADERS = {"anthropic-version": "2023-06-01", "content-type": "application/json"}


async def _post(
    sim: ProviderSimulator, api: str, text: str = "hi", *, system: Any = None, max_tokens: int = 100
) -> httpx.Response:
    """One raw request in ``api``'s wire format."""
    if api == "openai":
        messages = ([{"role": "system", "content": system}] if system else []) + [
            {"role": "user", "content": text}
        ]
        url, body = "/v1/chat/completions", {"model": "m", "messages": messages, "max_tokens": max_tokens}
    elif api == "anthropic":
        url = "/v1/messages"
        body = {"model": "m", "max_tokens": max_tokens, "messages": [{"role": "user", "content": text}]}
        if system:
            body["system"] = system
    else:
        url = "/v1beta/models/m:generateContent"
        body = {"contents": [{"role": "user", "parts": [{"text": text}]}]}
        if system:
            body["systemInstruction"] = {"parts": [{"text": system}]}
    async with httpx.AsyncClient() as client:
        return await client.post(sim.base_url + url, json=body, headers=_HEADERS)
