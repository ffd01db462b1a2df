"""Real provider output in the providers' documented wire formats: what is an answer and what is not."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from datamill.core.errors import (
    ContentFilteredError,
    EmptyReplyError,
    OutputValidationError,
    RefusalError,
    TruncatedReplyError,
    UnusableReplyError,
)
from datamill.llm.providers import anthropic, gemini, openai
from datamill.llm.replies import is_refusal, split_reasoning, usable_reply
from datamill.llm.structured import parse_json_text, validate_output
from datamill.llm.types import ProviderReply, Route, Usage

ROUTE = Route(name="t/m", provider="openai", model="m", base_url="http://127.0.0.1:9/v1")
SCHEMA = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}


def openai_body(content: Any, finish: str = "stop", **message: Any) -> bytes:
    return orjson.dumps(
        {
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "model": "m",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": content, "refusal": None, **message},
                    "finish_reason": finish,
                }
            ],
            "usage": {"prompt_tokens": 12, "completion_tokens": 7, "total_tokens": 19},
        }
    )


def anthropic_body(content: list[dict[str, Any]], stop_reason: str = "end_turn") -> bytes:
    return orjson.dumps(
        {
            "id": "msg_01",
            "type": "message",
            "role": "assistant",
            "model": "claude-sonnet-4-6",
            "content": content,
            "stop_reason": stop_reason,
            "stop_sequence": None,
            "usage": {"input_tokens": 25, "output_tokens": 12},
        }
    )


def gemini_body(parts: list[dict[str, Any]] | None, finish: str = "STOP") -> bytes:
    candidate: dict[str, Any] = {"finishReason": finish, "index": 0}
    if parts is not None:
        candidate["content"] = {"role": "model", "parts": parts}
    return orjson.dumps(
        {
            "candidates": [candidate],
            "usageMetadata": {"promptTokenCount": 9, "candidatesTokenCount": 4, "totalTokenCount": 13},
        }
    )


def checked(reply: ProviderReply) -> ProviderReply:
    return usable_reply(reply, ROUTE)


# -- what each provider's parser reads -------------------------------------------------------------------


def test_openai_refusal_field_is_a_refusal_not_invalid_json() -> None:
    body = openai_body(None, refusal="I'm sorry, I can't assist with that request.")

    reply = openai.parse_reply(body, ROUTE)

    assert reply.refusal == "I'm sorry, I can't assist with that request."
    with pytest.raises(RefusalError, match="refused: \"I'm sorry, I can't assist"):
        checked(reply)


@pytest.mark.parametrize(
    ("finish", "error"),
    [("length", TruncatedReplyError), ("content_filter", ContentFilteredError)],
)
def test_openai_finish_reasons_that_are_not_answers(finish: str, error: type[Exception]) -> None:
    reply = openai.parse_reply(openai_body("The capital of France is", finish), ROUTE)

    with pytest.raises(error):
        checked(reply)


def test_openai_reasoning_content_is_kept_apart_from_the_answer() -> None:
    body = openai_body("Paris.", reasoning_content="The user asks for a capital. France: Paris.")

    reply = checked(openai.parse_reply(body, ROUTE))

    assert reply.text == "Paris."
    assert reply.reasoning == "The user asks for a capital. France: Paris."


def test_openai_reasoning_cut_before_the_answer_is_truncated() -> None:
    body = openai_body(None, "length", reasoning_content="Let me think about this very carefully and")

    with pytest.raises(TruncatedReplyError, match="before any answer"):
        checked(openai.parse_reply(body, ROUTE))


def test_anthropic_thinking_blocks_are_reasoning_and_text_is_the_answer() -> None:
    body = anthropic_body(
        [
            {"type": "thinking", "thinking": "Two plus two is four.", "signature": "EqQB"},
            {"type": "redacted_thinking", "data": "EmwK"},
            {"type": "text", "text": "4"},
        ]
    )

    reply = checked(anthropic.parse_reply(body, ROUTE))

    assert (reply.text, reply.reasoning) == ("4", "Two plus two is four.")


def test_anthropic_empty_refusal_is_a_refusal() -> None:
    reply = anthropic.parse_reply(anthropic_body([], "refusal"), ROUTE)

    assert reply.finish_reason == "refusal"
    with pytest.raises(RefusalError, match=r"the model refused$"):
        checked(reply)


def test_anthropic_max_tokens_is_truncated_even_for_a_tool_call() -> None:
    cut_text = anthropic.parse_reply(
        anthropic_body([{"type": "text", "text": "Once upon a"}], "max_tokens"), ROUTE
    )
    cut_tool = anthropic.parse_reply(
        anthropic_body([{"type": "tool_use", "id": "t", "name": "output", "input": {}}], "max_tokens"), ROUTE
    )

    for reply in (cut_text, cut_tool):
        with pytest.raises(TruncatedReplyError):
            checked(reply)


@pytest.mark.parametrize("finish", ["SAFETY", "RECITATION", "PROHIBITED_CONTENT"])
def test_gemini_blocked_answers_with_or_without_parts_are_filtered(finish: str) -> None:
    for parts in (None, [{"text": "Here is how to"}]):
        reply = gemini.parse_reply(gemini_body(parts, finish), ROUTE)

        with pytest.raises(ContentFilteredError):
            checked(reply)


def test_gemini_max_tokens_and_thought_parts() -> None:
    cut = gemini.parse_reply(gemini_body([{"text": "The answer is"}], "MAX_TOKENS"), ROUTE)
    thought = gemini.parse_reply(
        gemini_body([{"text": "Consider the question.", "thought": True}, {"text": "Yes."}]), ROUTE
    )

    with pytest.raises(TruncatedReplyError):
        checked(cut)
    assert (checked(thought).text, checked(thought).reasoning) == ("Yes.", "Consider the question.")


# -- reply classification ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "answer", "reasoning"),
    [
        ("<think>\nThe user wants a greeting.\n</think>\n\nHello!", "Hello!", "The user wants a greeting."),
        ("The template opened the tag.\n</think>\n\nHello!", "Hello!", "The template opened the tag."),
        ("<thinking>plan</thinking>Hi", "Hi", "plan"),
        ("No reasoning here.", "No reasoning here.", None),
    ],
)
def test_reasoning_written_before_the_answer_is_split_off(
    text: str, answer: str, reasoning: str | None
) -> None:
    assert split_reasoning(text) == (answer, reasoning)


def test_reasoning_that_never_closes_leaves_no_answer() -> None:
    reply = ProviderReply("<think>I should consider many things", Usage(), "stop")

    with pytest.raises(EmptyReplyError, match="only reasoning"):
        checked(reply)


@pytest.mark.parametrize("text", ["", "   \n", "<think>all thought</think>\n"])
def test_empty_replies_are_empty(text: str) -> None:
    with pytest.raises(EmptyReplyError):
        checked(ProviderReply(text, Usage(), "stop"))


@pytest.mark.parametrize(
    "text",
    [
        "I can't help with that.",
        "I'm sorry, but I can't assist with that request.",
        "Sorry, I can’t help with that.",
        "I cannot comply with this request.",
        "I'm unable to help with this request. If you have other questions, feel free to ask!",
        "I won't be able to help with that.",
        "I must decline.",
        "As an AI language model, I cannot do that.",
    ],
)
def test_refusal_sentences_are_refusals(text: str) -> None:
    assert is_refusal(text)
    with pytest.raises(RefusalError):
        checked(ProviderReply(text, Usage(), "stop"))


@pytest.mark.parametrize(
    "text",
    [
        "I can't help with my kid's homework, how do I start?",
        "I cannot access my email. What should I do?",
        "I can't provide medical advice, but here are general facts: rest, drink water, and see a doctor if "
        "the fever lasts more than three days.",
        "I can help with that.",
        "I cannot write Python. Teach me the basics.",
    ],
)
def test_answers_and_first_person_requests_are_not_refusals(text: str) -> None:
    assert not is_refusal(text)
    assert checked(ProviderReply(text, Usage(), "stop")).text == text


def test_every_unusable_reply_names_its_reason() -> None:
    reasons = {
        cls.reason for cls in (RefusalError, TruncatedReplyError, EmptyReplyError, ContentFilteredError)
    }

    assert reasons == {"refusal", "truncated", "empty", "content_filter"}
    assert all(issubclass(cls, UnusableReplyError) for cls in (RefusalError, EmptyReplyError))


# -- JSON inside real replies ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        '```json\n{"answer": "yes"}\n```',
        'Here is the JSON you asked for:\n\n{"answer": "yes"}\n\nLet me know if you need anything else.',
        'Sure! ```\n{"answer": "yes"}\n``` Done.',
        'Based on [1] and [2], the result is {"answer": "yes"}.',
    ],
)
def test_json_is_found_in_fences_and_prose(text: str) -> None:
    assert validate_output(text, SCHEMA) == {"answer": "yes"}


def test_prose_without_json_is_still_not_json() -> None:
    with pytest.raises(OutputValidationError, match="not valid JSON"):
        parse_json_text("There is no JSON here at all.")
