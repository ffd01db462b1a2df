"""The three wire formats the simulator speaks: requests parsed into one shape, answers and errors built back.

- OpenAI chat completions: ``POST /v1/chat/completions``.
- Anthropic Messages: ``POST /v1/messages``.
- Gemini ``generateContent``: ``POST /v1beta/models/{model}:generateContent``.

A request is read into a `WireRequest` (system text, turns, the JSON schema asked for, the answer cap); an
`Answer` (text, finish, reasoning, refusal) and a `Billed` usage are written back in the format's own JSON.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

from datamill.llm.simulator.log import Billed

API_OPENAI = "openai"
API_ANTHROPIC = "anthropic"
API_GEMINI = "gemini"
APIS = (API_OPENAI, API_ANTHROPIC, API_GEMINI)

#: Tokens counted per image in a prompt (a rough flat figure; providers count by size).
IMAGE_TOKENS = 85
_SCHEMA_WORDS = re.compile(r"JSON schema", re.IGNORECASE)


class BadRequest(ValueError):
    """The request is not valid for its API; the simulator answers 400 with this message."""


@dataclass(slots=True)
class WireRequest:
    """One request, whatever its wire format.

    Attributes:
        api: ``openai``, ``anthropic`` or ``gemini``.
        model: the model id asked for.
        system: the system text (all system messages / blocks, joined by blank lines).
        turns: user and assistant turns in order, as (role, text); images are counted in ``images``.
        schema: the JSON schema the answer must match (native structured output, a forced tool, or a schema
            quoted in the system text after the words "JSON schema").
        wants_json: the request asks for a JSON answer (with or without a schema).
        tool: the name of the tool an Anthropic request forces (the answer goes in its arguments).
        max_tokens: the answer cap asked for.
        thinking: the request turns on reasoning (``reasoning_effort``, ``thinking``, ``thinkingConfig``).
        prompt_text: everything the model reads, in order: the text the token counts and the prefix cache use.
        cache_breakpoint: Anthropic: the length of ``prompt_text`` up to the last ``cache_control`` block.
    """

    api: str
    model: str
    system: str = ""
    turns: list[tuple[str, str]] = field(default_factory=list)
    images: int = 0
    schema: dict[str, Any] | None = None
    wants_json: bool = False
    tool: str | None = None
    max_tokens: int | None = None
    thinking: bool = False
    prompt_text: str = ""
    cache_breakpoint: int | None = None

    @property
    def last_user(self) -> str:
        """The text of the last user turn."""
        return next((text for role, text in reversed(self.turns) if role == "user"), "")

    @property
    def prompt_tokens(self) -> int:
        return tokens(self.prompt_text) + IMAGE_TOKENS * self.images

    def mentions(self, text: str) -> bool:
        """Whether the model reads ``text`` anywhere in this request."""
        return text in self.prompt_text


@dataclass(slots=True)
class Answer:
    """What the model says, before it is written in a wire format.

    Attributes:
        text: the content text ("" for none).
        finish: ``stop``, ``length`` (cut at the cap), ``content_filter`` or ``refusal``.
        reasoning: reasoning sent in the format's own field (OpenAI ``reasoning_content``, an Anthropic
            thinking block, a Gemini thought part).
        refusal: OpenAI's ``message.refusal``.
        data: a forced Anthropic tool call's arguments (None: no tool call).
    """

    text: str
    finish: str = "stop"
    reasoning: str | None = None
    refusal: str | None = None
    data: Any = None


def tokens(text: str) -> int:
    """The simulator's token count: one token per four characters, rounded up."""
    return math.ceil(len(text) / 4)


# ---- requests ----------------------------------------------------------------------------------------------


def parse(api: str, body: Any, *, model: str | None = None) -> WireRequest:
    """Read a request body of ``api``'s format (the Gemini model comes from the path).

    Raises:
        BadRequest: the body is not a valid request of that format.
    """
    if not isinstance(body, dict):
        raise BadRequest("the request body must be a JSON object")
    try:
        if api == API_OPENAI:
            request = _parse_openai(body)
        elif api == API_ANTHROPIC:
            request = _parse_anthropic(body)
        else:
            request = _parse_gemini(body, model or "")
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        if isinstance(exc, BadRequest):
            raise
        raise BadRequest(f"malformed request: {exc!r}") from None
    if request.schema is None:
        request.schema = _quoted_schema(request.system)
        request.wants_json = request.wants_json or request.schema is not None
    return request


class _Text:
    """Builds ``prompt_text`` piece by piece."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.length = 0

    def add(self, text: str) -> None:
        self.parts.append(text)
        self.parts.append("\n")
        self.length += len(text) + 1

    def text(self) -> str:
        return "".join(self.parts)


def _parse_openai(body: dict[str, Any]) -> WireRequest:
    messages = body["messages"]
    if not isinstance(messages, list) or not messages:
        raise BadRequest("'messages' must be a non-empty array")
    request = WireRequest(API_OPENAI, str(body.get("model") or ""))
    text, system = _Text(), []
    for message in messages:
        role = message["role"]
        content, images = _openai_content(message.get("content"))
        request.images += images
        text.add(f"{role}: {content}")
        if role in ("system", "developer"):
            system.append(content)
        else:
            request.turns.append((role, content))
    request.system = "\n\n".join(system)
    request.prompt_text = text.text()
    fmt = body.get("response_format") or {}
    if fmt.get("type") == "json_schema":
        request.wants_json = True
        request.schema = (fmt.get("json_schema") or {}).get("schema")
    elif fmt.get("type") == "json_object":
        request.wants_json = True
    cap = body.get("max_completion_tokens", body.get("max_tokens"))
    request.max_tokens = int(cap) if cap is not None else None
    request.thinking = "reasoning_effort" in body
    return request


def _openai_content(content: Any) -> tuple[str, int]:
    if content is None or isinstance(content, str):
        return content or "", 0
    texts = [part["text"] for part in content if part.get("type") == "text"]
    images = sum(1 for part in content if part.get("type") == "image_url")
    return "\n".join(texts), images


def _parse_anthropic(body: dict[str, Any]) -> WireRequest:
    if "max_tokens" not in body:
        raise BadRequest("max_tokens: Field required")
    messages = body["messages"]
    if not isinstance(messages, list) or not messages:
        raise BadRequest("messages: at least one message is required")
    request = WireRequest(API_ANTHROPIC, str(body.get("model") or ""), max_tokens=int(body["max_tokens"]))
    text = _Text()
    system = body.get("system")
    blocks = [{"type": "text", "text": system}] if isinstance(system, str) else (system or [])
    system_texts = []
    for block in blocks:
        system_texts.append(block["text"])
        text.add(f"system: {block['text']}")
        if block.get("cache_control"):
            request.cache_breakpoint = text.length
    request.system = "\n\n".join(system_texts)
    for message in messages:
        role, content = message["role"], message["content"]
        parts = [{"type": "text", "text": content}] if isinstance(content, str) else content
        texts = []
        for part in parts:
            if part.get("type") == "image":
                request.images += 1
            elif part.get("type") == "text":
                texts.append(part["text"])
                text.add(f"{role}: {part['text']}")
            if part.get("cache_control"):
                request.cache_breakpoint = text.length
        request.turns.append((role, "\n\n".join(texts)))
    request.prompt_text = text.text()
    choice = body.get("tool_choice") or {}
    if choice.get("type") == "tool":
        tool = next(t for t in body.get("tools") or [] if t.get("name") == choice.get("name"))
        request.tool, request.schema, request.wants_json = tool["name"], tool["input_schema"], True
    thinking = body.get("thinking") or {}
    request.thinking = thinking.get("type") == "enabled"
    if request.thinking and request.tool is not None:
        raise BadRequest("Thinking may not be enabled when tool_choice forces tool use.")
    return request


def _parse_gemini(body: dict[str, Any], model: str) -> WireRequest:
    contents = body["contents"]
    if not isinstance(contents, list) or not contents:
        raise BadRequest("contents is not specified")
    request = WireRequest(API_GEMINI, model)
    text = _Text()
    instruction = body.get("systemInstruction") or body.get("system_instruction")
    if instruction:
        request.system = "".join(p.get("text", "") for p in instruction.get("parts") or [])
        text.add(f"system: {request.system}")
    for content in contents:
        role = {"model": "assistant"}.get(content.get("role", "user"), "user")
        texts = []
        for part in content["parts"]:
            if "text" in part:
                texts.append(part["text"])
                text.add(f"{role}: {part['text']}")
            elif "inline_data" in part or "inlineData" in part or "file_data" in part:
                request.images += 1
        request.turns.append((role, "\n".join(texts)))
    request.prompt_text = text.text()
    config = body.get("generationConfig") or {}
    request.wants_json = config.get("responseMimeType") == "application/json"
    schema = config.get("responseJsonSchema") or config.get("responseSchema")
    if schema is not None:
        request.schema, request.wants_json = schema, True
    cap = config.get("maxOutputTokens")
    request.max_tokens = int(cap) if cap is not None else None
    request.thinking = bool((config.get("thinkingConfig") or {}).get("thinkingBudget"))
    return request


def _quoted_schema(system: str) -> dict[str, Any] | None:
    """A JSON object quoted after the words "JSON schema" in the system text, if there is one."""
    match = _SCHEMA_WORDS.search(system)
    if match is None:
        return None
    start = system.find("{", match.end())
    if start < 0:
        return None
    try:
        value, _ = json.JSONDecoder().raw_decode(system, start)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


# ---- answers -----------------------------------------------------------------------------------------------


def reply_body(request: WireRequest, answer: Answer, billed: Billed, number: int) -> dict[str, Any]:
    """A 200 body in the request's format."""
    if request.api == API_OPENAI:
        return _openai_reply(request, answer, billed, number)
    if request.api == API_ANTHROPIC:
        return _anthropic_reply(request, answer, billed, number)
    return _gemini_reply(request, answer, billed)


_OPENAI_FINISH = {"stop": "stop", "length": "length", "content_filter": "content_filter", "refusal": "stop"}


def _openai_reply(request: WireRequest, answer: Answer, billed: Billed, number: int) -> dict[str, Any]:
    content: str | None = answer.text
    if answer.refusal is not None or (answer.finish == "content_filter" and not answer.text):
        content = None
    message: dict[str, Any] = {"role": "assistant", "content": content, "refusal": answer.refusal}
    if answer.reasoning is not None:
        message["reasoning_content"] = answer.reasoning
    completion = billed.output_tokens + billed.reasoning_tokens
    return {
        "id": f"chatcmpl-sim-{number}",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": request.model,
        "choices": [
            {"index": 0, "message": message, "logprobs": None, "finish_reason": _OPENAI_FINISH[answer.finish]}
        ],
        "usage": {
            "prompt_tokens": billed.input_tokens,
            "completion_tokens": completion,
            "total_tokens": billed.input_tokens + completion,
            "prompt_tokens_details": {"cached_tokens": billed.cached_input_tokens, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": billed.reasoning_tokens, "audio_tokens": 0},
        },
    }


_ANTHROPIC_STOP = {
    "stop": "end_turn",
    "length": "max_tokens",
    "content_filter": "refusal",
    "refusal": "refusal",
}


def _anthropic_reply(request: WireRequest, answer: Answer, billed: Billed, number: int) -> dict[str, Any]:
    content: list[dict[str, Any]] = []
    if answer.reasoning is not None:
        content.append(
            {"type": "thinking", "thinking": answer.reasoning, "signature": f"sim-signature-{number}"}
        )
    stop = _ANTHROPIC_STOP[answer.finish]
    if request.tool is not None and answer.data is not None:
        content.append(
            {"type": "tool_use", "id": f"toolu_sim_{number}", "name": request.tool, "input": answer.data}
        )
        if stop == "end_turn":
            stop = "tool_use"
    elif answer.text:
        content.append({"type": "text", "text": answer.text})
    return {
        "id": f"msg_sim_{number}",
        "type": "message",
        "role": "assistant",
        "model": request.model,
        "content": content,
        "stop_reason": stop,
        "stop_sequence": None,
        "usage": {
            "input_tokens": billed.input_tokens - billed.cached_input_tokens - billed.cache_write_tokens,
            "cache_creation_input_tokens": billed.cache_write_tokens,
            "cache_read_input_tokens": billed.cached_input_tokens,
            "output_tokens": billed.output_tokens + billed.reasoning_tokens,
        },
    }


_GEMINI_FINISH = {"stop": "STOP", "length": "MAX_TOKENS", "content_filter": "SAFETY", "refusal": "STOP"}


def _gemini_reply(request: WireRequest, answer: Answer, billed: Billed) -> dict[str, Any]:
    candidate: dict[str, Any] = {"finishReason": _GEMINI_FINISH[answer.finish], "index": 0}
    if answer.finish == "content_filter":
        candidate["safetyRatings"] = [
            {"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH", "blocked": True}
        ]
    else:
        parts: list[dict[str, Any]] = []
        if answer.reasoning is not None:
            parts.append({"text": answer.reasoning, "thought": True})
        parts.append({"text": answer.text})
        candidate["content"] = {"role": "model", "parts": parts}
    usage = {
        "promptTokenCount": billed.input_tokens,
        "candidatesTokenCount": billed.output_tokens,
        "totalTokenCount": billed.input_tokens + billed.output_tokens + billed.reasoning_tokens,
    }
    if billed.cached_input_tokens:
        usage["cachedContentTokenCount"] = billed.cached_input_tokens
    if billed.reasoning_tokens:
        usage["thoughtsTokenCount"] = billed.reasoning_tokens
    return {"candidates": [candidate], "usageMetadata": usage, "modelVersion": request.model}


# ---- errors ------------------------------------------------------------------------------------------------

_GEMINI_STATUS = {400: "INVALID_ARGUMENT", 429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 503: "UNAVAILABLE"}


def error_body(
    api: str, status: int, kind: str, message: str, *, retry_after_s: float | None = None
) -> dict[str, Any]:
    """An error body in ``api``'s shape. ``kind`` is OpenAI's ``type`` / Anthropic's ``error.type``."""
    if api == API_OPENAI:
        code = (
            kind if kind in ("insufficient_quota", "rate_limit_exceeded", "unsupported_parameter") else None
        )
        return {"error": {"message": message, "type": kind, "param": None, "code": code}}
    if api == API_ANTHROPIC:
        return {"type": "error", "error": {"type": kind, "message": message}, "request_id": "req_sim"}
    error: dict[str, Any] = {
        "code": status,
        "message": message,
        "status": _GEMINI_STATUS.get(status, "UNKNOWN"),
    }
    if status == 429:
        error["details"] = [
            {
                "@type": "type.googleapis.com/google.rpc.QuotaFailure",
                "violations": [
                    {"quotaMetric": "generativelanguage.googleapis.com/generate_content_requests"}
                ],
            }
        ]
        if retry_after_s is not None:
            error["details"].append(
                {
                    "@type": "type.googleapis.com/google.rpc.RetryInfo",
                    "retryDelay": f"{math.ceil(retry_after_s)}s",
                }
            )
    return {"error": error}
