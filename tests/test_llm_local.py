"""LlamaCppProvider: configuration errors always; the real bundled SmolLM2 when llama-cpp-python is installed.

Tests marked ``local_model`` run the real model (skipped, with the reason, when llama_cpp is not importable).
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from datamill.core.errors import ConfigError, PermanentModelError
from datamill.llm.providers import local
from datamill.llm.providers.local import LlamaCppProvider, fit_messages, grammar_schema, resolve_model_path
from datamill.llm.types import ChatRequest, Message, Route

BUNDLED = "bundled:smollm2"
PERSON = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
    "required": ["name", "age"],
}


def make_route(model: str = BUNDLED) -> Route:
    return Route(name="local/smollm2", provider="local", model=model)


def ask(text: str, **kwargs: Any) -> ChatRequest:
    return ChatRequest(
        messages=(Message("system", "You are a helpful assistant."), Message("user", text)), **kwargs
    )


@pytest.fixture
def provider() -> LlamaCppProvider:
    pytest.importorskip(
        "llama_cpp", reason="llama-cpp-python is not installed (pip install 'datamill[local]')"
    )
    return LlamaCppProvider(None)


@pytest.fixture
def llama(provider: LlamaCppProvider) -> Any:
    return local._load(resolve_model_path(BUNDLED)).llama


async def test_missing_gguf_path_is_a_config_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope.gguf"

    with pytest.raises(ConfigError, match=r"nope\.gguf"):
        await LlamaCppProvider(None).complete(make_route(str(missing)), ask("hi"))


async def test_unknown_bundled_model_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="bundled:smollm2"):
        await LlamaCppProvider(None).complete(make_route("bundled:gpt-9"), ask("hi"))


async def test_missing_weights_package_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(local.BUNDLED_MODELS, "smollm2", ("datamill_no_such_weights", "model.gguf"))

    with pytest.raises(ConfigError, match=r"requirements/local-model\.txt"):
        await LlamaCppProvider(None).complete(make_route(), ask("hi"))


async def test_missing_llama_cpp_is_a_config_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    gguf = tmp_path / "other.gguf"
    gguf.write_bytes(b"GGUF")
    monkeypatch.setitem(sys.modules, "llama_cpp", None)  # makes `import llama_cpp` raise ImportError

    with pytest.raises(ConfigError, match=r"datamill\[local\]"):
        await LlamaCppProvider(None).complete(make_route(str(gguf)), ask("hi"))


def test_grammar_bounds_only_the_named_strings_and_keeps_the_schema() -> None:
    schema = {
        "type": "object",
        "properties": {
            "rationale": {"type": "string"},
            "short": {"type": "string", "maxLength": 10},
            "age": {"type": "integer"},
        },
        "required": ["rationale", "short", "age"],
    }
    original = json.loads(json.dumps(schema))

    bounded = grammar_schema(schema, {"rationale": 200, "short": 50, "age": 3, "absent": 9})

    assert bounded["properties"]["rationale"] == {"type": "string", "maxLength": 200}
    assert bounded["properties"]["short"]["maxLength"] == 10  # a tighter bound of the schema's own stays
    assert bounded["properties"]["age"] == {"type": "integer"}  # only strings are bounded
    assert "absent" not in bounded["properties"]
    assert bounded["required"] == schema["required"]
    assert schema == original  # the schema the gateway validates against is untouched
    assert grammar_schema(schema, {}) == schema


def test_grammar_lists_the_values_of_small_integer_ranges_at_any_depth() -> None:
    score = {"type": "integer", "minimum": 1, "maximum": 5}
    schema = {
        "type": "object",
        "properties": {
            "scores": {"type": "object", "properties": {"style": dict(score)}},
            "items": {"type": "array", "items": dict(score)},
            "count": {"type": "integer", "minimum": 0, "maximum": 10_000},
            "open": {"type": "integer", "minimum": 1},
        },
    }

    bounded = grammar_schema(schema, {})

    assert bounded["properties"]["scores"]["properties"]["style"]["enum"] == [1, 2, 3, 4, 5]
    assert bounded["properties"]["items"]["items"]["enum"] == [1, 2, 3, 4, 5]
    assert "enum" not in bounded["properties"]["count"]  # too wide to list
    assert "enum" not in bounded["properties"]["open"]
    assert "enum" not in schema["properties"]["scores"]["properties"]["style"]


def test_the_bounded_judge_schemas_compile_to_grammars() -> None:
    llama_grammar = pytest.importorskip("llama_cpp.llama_grammar")
    from datamill.pipelines.evaluation_rubric import JUDGE_SCHEMA, STYLE_SCHEMA
    from datamill.steps.judging import RATIONALE_BOUND, RATIONALE_MAX_CHARS

    for schema, scores in ((JUDGE_SCHEMA, 4), (STYLE_SCHEMA, 1)):
        gbnf = llama_grammar.json_schema_to_gbnf(json.dumps(grammar_schema(schema, RATIONALE_BOUND)))
        assert gbnf.count('::= "1" | "2" | "3" | "4" | "5"') == scores  # every score is one of its levels
        assert gbnf.count("(char") == RATIONALE_MAX_CHARS  # the rationale: up to 200 characters


@pytest.mark.local_model
async def test_text_reply(provider: LlamaCppProvider) -> None:
    reply = await provider.complete(make_route(), ask("Name one colour.", max_tokens=24))

    assert reply.text.strip()
    assert reply.usage.input_tokens > 0
    assert 0 < reply.usage.output_tokens <= 24
    assert reply.finish_reason in ("stop", "length")


@pytest.mark.local_model
async def test_json_schema_reply_parses_and_matches(provider: LlamaCppProvider) -> None:
    request = ask("Describe a person as JSON with a name and an age.", max_tokens=64, json_schema=PERSON)

    reply = await provider.complete(make_route(), request)

    jsonschema.validate(json.loads(reply.text), PERSON)


@pytest.mark.local_model
async def test_a_list_ends_instead_of_looping_to_the_token_limit(provider: LlamaCppProvider) -> None:
    # Without the repetition penalty this reply repeats "Use active and passive voice." to the 400-token cap.
    request = ask("Write a numbered list of tips for writing.", max_tokens=400)
    reply = await provider.complete(make_route(), request)

    assert reply.finish_reason == "stop", reply.text[-200:]
    items = [line.split(".", 1)[-1].strip() for line in reply.text.splitlines() if line.strip()]
    assert len(items) == len(set(items)), reply.text


@pytest.mark.local_model
async def test_same_request_same_answer_and_one_load_per_file(provider: LlamaCppProvider) -> None:
    request = ask("Write a short greeting.", max_tokens=16, temperature=0.9)

    first = await provider.complete(make_route(), request)
    second = await LlamaCppProvider(None).complete(make_route(), request)

    assert first.text == second.text
    path = resolve_model_path(BUNDLED)
    assert local._load(path) is local._load(path)


@pytest.mark.local_model
async def test_concurrent_calls_from_two_providers_match_sequential_ones(provider: LlamaCppProvider) -> None:
    requests = [ask(f"Say something about the number {n}.", max_tokens=12, seed=n) for n in range(4)]
    sequential = [(await provider.complete(make_route(), r)).text for r in requests]
    other = LlamaCppProvider(None)

    replies = await asyncio.gather(
        *((provider, other)[i % 2].complete(make_route(), r) for i, r in enumerate(requests))
    )

    assert [r.text for r in replies] == sequential


@pytest.mark.local_model
def test_long_user_message_loses_its_middle(llama: Any) -> None:
    document = "START " + "lorem ipsum dolor sit amet " * 2000 + " FINISH"
    messages = [{"role": "system", "content": "Summarise."}, {"role": "user", "content": document}]

    fitted = fit_messages(llama, messages, reserve=512)

    cut = fitted[1]["content"]
    assert cut.startswith("START ")
    assert cut.endswith(" FINISH")
    assert local.TRUNCATION_MARKER in cut
    assert fitted[0] == messages[0]
    total = sum(len(llama.tokenize(m["content"].encode(), add_bos=False, special=False)) for m in fitted)
    assert total + 512 <= local.N_CTX


@pytest.mark.local_model
def test_short_prompt_is_untouched_and_oversized_system_prompt_is_refused(llama: Any) -> None:
    short = [{"role": "user", "content": "Hello"}]
    huge_system = [{"role": "system", "content": "rule " * 6000}, {"role": "user", "content": "Hello"}]

    assert fit_messages(llama, short, reserve=512) == short
    with pytest.raises(PermanentModelError, match="does not fit"):
        fit_messages(llama, huge_system, reserve=512)


@pytest.mark.local_model
async def test_unreadable_gguf_is_a_config_error(provider: LlamaCppProvider, tmp_path: Path) -> None:
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"not a gguf file at all")

    with pytest.raises(ConfigError, match="cannot load"):
        await provider.complete(make_route(str(broken)), ask("hi"))
