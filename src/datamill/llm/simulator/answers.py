"""What the simulated model says: a deterministic answer from the request, then the behaviour's change to it.

The clean answer depends only on the request, so a test can check what came out of a pipeline:

- a JSON request (a schema, a forced tool, ``json_object``/``application/json``): a value built from the
  schema that validates against it (`datamill.llm.providers.fake.fake_value`, seeded by a digest of the
  prompt), or ``{"answer": <echo>}`` when no schema is given;
- a text request: ``"[sim] "`` followed by the last user turn, whitespace collapsed, cut to ``echo_chars``
  characters, so a test sees which text reached the model;
- a ``responder`` callable, when given, returns the text instead (JSON text for a JSON request).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import orjson

from datamill.llm.providers.fake import fake_value
from datamill.llm.simulator.formats import API_ANTHROPIC, API_OPENAI, Answer, WireRequest

Responder = Callable[[WireRequest], str]

REFUSAL_TEXT = "I can't help with that."
REFUSAL_FIELD = "I'm sorry, but I can't assist with that request."
PROSE_BEFORE = "Sure! Here is the JSON you asked for:\n\n"
PROSE_AFTER = "\n\nLet me know if you need anything else."


def clean_answer(
    request: WireRequest, *, echo_chars: int = 200, responder: Responder | None = None
) -> Answer:
    """The answer with no behaviour applied (a forced tool call's arguments go in ``data``)."""
    if responder is not None:
        text = responder(request)
    elif request.wants_json:
        seed = hashlib.sha256(request.prompt_text.encode()).hexdigest()[:8]
        value: Any = (
            fake_value(request.schema, seed)
            if request.schema is not None
            else {"answer": echo(request, echo_chars)}
        )
        text = orjson.dumps(value).decode()
    else:
        text = "[sim] " + echo(request, echo_chars)
    if request.tool is not None:
        return Answer("", data=orjson.loads(text))
    return Answer(text)


def echo(request: WireRequest, limit: int) -> str:
    return " ".join(request.last_user.split())[:limit]


def reasoning_text(request: WireRequest) -> str:
    """The reasoning a behaviour puts before or beside the answer."""
    return f"The user asks: {echo(request, 80)}. Let me think about what they need, step by step."


def apply(behaviour: str, request: WireRequest, clean: Answer) -> Answer | None:
    """The answer under a content behaviour; None when the behaviour cannot occur for this request."""
    tool = request.tool is not None
    if behaviour == "refusal_text":
        return None if tool else Answer(REFUSAL_TEXT)
    if behaviour == "refusal_field":
        if request.api == API_OPENAI:
            return Answer("", refusal=REFUSAL_FIELD)
        if request.api == API_ANTHROPIC:
            return Answer("", finish="refusal")
        return Answer(REFUSAL_TEXT)
    if behaviour == "truncation":
        if tool:
            return Answer("", finish="length", data={})
        cut = clean.text[: max(1, len(clean.text) // 2)]
        if request.max_tokens is not None:
            cut = cut[: max(1, request.max_tokens * 4)]
        return Answer(cut, finish="length")
    if behaviour == "think":
        return None if tool else Answer(f"<think>\n{reasoning_text(request)}\n</think>\n\n{clean.text}")
    if behaviour == "reasoning_field":
        return Answer(clean.text, reasoning=reasoning_text(request), data=clean.data)
    if behaviour in ("json_fence", "prose_json"):
        if tool or not request.wants_json:
            return None
        if behaviour == "json_fence":
            return Answer(f"```json\n{clean.text}\n```")
        return Answer(PROSE_BEFORE + clean.text + PROSE_AFTER)
    if behaviour == "empty":
        return Answer("")
    if behaviour == "content_filter":
        return Answer("", finish="refusal" if request.api == API_ANTHROPIC else "content_filter")
    raise ValueError(f"not a content behaviour: {behaviour!r}")


def native_reasoning(request: WireRequest, answer: Answer) -> Answer:
    """An Anthropic request with thinking on always gets a thinking block, as the API sends one."""
    if (
        request.api == API_ANTHROPIC
        and request.thinking
        and answer.reasoning is None
        and answer.finish != "refusal"
    ):
        answer.reasoning = reasoning_text(request)
    return answer
