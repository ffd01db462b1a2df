"""OpenAI-compatible chat completions (``POST {base_url}/chat/completions``; ``base_url`` ends in ``/v1``).

Serves OpenAI, Together, Databricks model serving, vLLM, Ollama and llama.cpp's server alike.

How a provider-neutral `ChatRequest` maps onto the API:

- ``model``, ``messages``, ``stop`` (when given) and ``seed`` (when given) as they are.
- Non-thinking routes send ``temperature`` and ``max_tokens``.
- Thinking routes send ``reasoning_effort`` derived from the thinking budget (the request's, else the
  route's default): up to 1,024 tokens ``low``, up to 8,192 ``medium``, above that ``high``. They send
  ``max_completion_tokens`` = answer cap + budget instead of ``max_tokens`` (reasoning models count reasoning
  inside it and reject ``max_tokens``), and no ``temperature`` (reasoning models accept only the default).
- A JSON schema becomes ``response_format: {"type": "json_schema", "json_schema": {"name": "output",
  "schema": ..., "strict": true}}`` when the route enforces schemas: strict mode, with the schema's strict
  form (`strict_schema`: objects closed, length keywords left to datamill's validation), or without
  ``strict`` for a schema that has no strict form (optional properties, open objects). A route that does not
  enforce schemas gets ``{"type": "json_object"}`` plus a system instruction carrying the schema. The gateway
  validates the reply against the full schema either way.

Replies: ``choices[0].message.content``, ``finish_reason``, ``message.refusal`` (structured outputs'
refusal, sent with a null content), ``message.reasoning_content`` or ``message.reasoning`` (the reasoning
that DeepSeek, vLLM's reasoning parsers and OpenRouter return apart from the answer), and ``usage``:
``prompt_tokens`` as input, of which ``prompt_tokens_details.cached_tokens`` were read from the provider's
prompt cache (OpenAI caches prompt prefixes of 1,024 tokens and more on its own, with no request field),
``completion_tokens_details.reasoning_tokens`` as thinking, and the rest of ``completion_tokens`` as output
(the API counts reasoning inside completion tokens, so it is subtracted to avoid counting it twice). HTTP
errors map through `raise_for_status`; a 200 whose body is not a chat completion raises TransientError.
"""

from __future__ import annotations

from typing import Any

import orjson

from datamill.core.errors import ConfigError, TransientError
from datamill.llm.http.interface import Transport
from datamill.llm.http.transport import HttpTransport
from datamill.llm.limits.headers import read_rate_limits
from datamill.llm.providers.base import api_key, raise_for_status
from datamill.llm.structured import schema_instruction, strict_schema
from datamill.llm.types import ChatRequest, Message, ProviderReply, Route, Usage


class OpenAIProvider:
    """Calls an OpenAI-compatible endpoint through the gateway's shared HTTP transport."""

    def __init__(self, transport: Transport | None = None) -> None:
        self._owns_transport = transport is None
        self._transport = transport if transport is not None else HttpTransport()

    async def complete(self, route: Route, request: ChatRequest) -> ProviderReply:
        if not route.base_url:
            raise ConfigError(f"model {route.name!r} has no base_url in its route")
        url = route.base_url.rstrip("/") + "/chat/completions"
        reply = await self._transport.post_json(
            url,
            build_payload(route, request),
            headers=_headers(route),
            timeout_s=route.timeout_s,
            proxy=route.proxy,
        )
        raise_for_status(reply, route)
        result = parse_reply(reply.body, route)
        result.rate_limits = read_rate_limits(reply.headers)
        return result

    async def aclose(self) -> None:
        if self._owns_transport:
            await self._transport.aclose()


def reasoning_effort(budget: int) -> str:
    """The ``reasoning_effort`` level for a thinking budget in tokens."""
    if budget <= 1024:
        return "low"
    return "medium" if budget <= 8192 else "high"


def build_payload(route: Route, request: ChatRequest) -> dict[str, Any]:
    """The JSON body for one request."""
    messages: list[dict[str, Any]] = [{"role": m.role, "content": _content(m)} for m in request.messages]
    payload: dict[str, Any] = {"model": route.model, "messages": messages}
    if route.thinking:
        budget = request.thinking_budget or route.default_thinking_budget
        payload["reasoning_effort"] = reasoning_effort(budget)
        if request.max_tokens is not None:
            payload["max_completion_tokens"] = request.max_tokens + budget
    else:
        payload["temperature"] = request.temperature
        if request.max_tokens is not None:
            payload["max_tokens"] = request.max_tokens
    if request.stop:
        payload["stop"] = list(request.stop)
    if request.seed is not None:
        payload["seed"] = request.seed
    if request.json_schema is not None:
        if route.json_schema:
            strict = strict_schema(request.json_schema)
            spec: dict[str, Any] = {"name": "output", "schema": request.json_schema}
            if strict is not None:
                spec = {"name": "output", "schema": strict, "strict": True}
            payload["response_format"] = {"type": "json_schema", "json_schema": spec}
        else:
            payload["response_format"] = {"type": "json_object"}
            _add_instruction(messages, schema_instruction(request.json_schema))
    return payload


def _add_instruction(messages: list[dict[str, Any]], instruction: str) -> None:
    if messages and messages[0]["role"] == "system":
        messages[0] = {"role": "system", "content": messages[0]["content"] + "\n\n" + instruction}
    else:
        messages.insert(0, {"role": "system", "content": instruction})


def _headers(route: Route) -> dict[str, str] | None:
    key = api_key(route)
    if key is None and not route.headers:
        return None
    headers = dict(route.headers)
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    return headers


def parse_reply(body: bytes, route: Route) -> ProviderReply:
    """Text, finish reason and usage from a chat-completion body.

    Raises:
        TransientError: the body is not a chat completion (worth retrying: proxies sometimes mangle replies).
    """
    try:
        data = orjson.loads(body)
        choice = data["choices"][0]
        message = choice["message"]
        text = _content_text(message.get("content"))
        refusal = message.get("refusal") or None
        reasoning_text = message.get("reasoning_content") or message.get("reasoning") or None
        finish_reason = choice.get("finish_reason")
        usage = data.get("usage") or {}
        completion = int(usage.get("completion_tokens") or 0)
        reasoning = int((usage.get("completion_tokens_details") or {}).get("reasoning_tokens") or 0)
        cached = int((usage.get("prompt_tokens_details") or {}).get("cached_tokens") or 0)
        tokens = Usage(
            int(usage.get("prompt_tokens") or 0), max(0, completion - reasoning), reasoning, cached
        )
    except (orjson.JSONDecodeError, KeyError, IndexError, TypeError, ValueError, AttributeError) as exc:
        shown = body[:200].decode("utf-8", "replace")
        raise TransientError(f"{route.name}: malformed chat completion ({exc!r}): {shown!r}") from None
    return ProviderReply(
        text,
        tokens,
        finish_reason,
        refusal=str(refusal) if refusal is not None else None,
        reasoning=reasoning_text if isinstance(reasoning_text, str) else None,
    )


def _content(message: Message) -> str | list[dict[str, Any]]:
    """A message's content: plain text, or text and ``image_url`` parts when it carries images."""
    if not message.images:
        return message.content
    parts: list[dict[str, Any]] = [{"type": "text", "text": message.content}]
    parts.extend({"type": "image_url", "image_url": {"url": image.data_uri()}} for image in message.images)
    return parts


def _content_text(content: Any) -> str:
    """``message.content`` as text: a string, null (nothing said), or a list of content parts."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(part["text"] for part in content if part.get("type") == "text")
    raise TypeError(f"message.content is a {type(content).__name__}")
