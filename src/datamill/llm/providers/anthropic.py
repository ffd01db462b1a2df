"""Anthropic Messages API provider (``POST {base_url}/v1/messages``).

How a provider-neutral `ChatRequest` maps onto the Messages API:

- System messages move to the top-level ``system`` field (several are joined with a blank line).
- ``max_tokens`` is required by the API: the request's cap, or `DEFAULT_MAX_TOKENS`. On thinking routes the
  API counts thinking inside ``max_tokens`` and requires it to exceed the budget, so the provider sends
  ``budget + answer cap``: the answer keeps the cap the caller asked for.
- Thinking routes send ``thinking: {"type": "enabled", "budget_tokens": ...}`` with the request's budget or
  the route's default (raised to the API minimum of 1024), and no ``temperature`` (the API only accepts the
  default with thinking on). Otherwise ``temperature`` is clamped to Anthropic's range 0–1.
- A JSON schema without thinking becomes a forced tool call (a tool named ``output`` whose ``input_schema`` is
  the schema, ``tool_choice`` pinned to it); the tool input is returned serialised as JSON text. A schema that
  is not an object is wrapped in ``{"value": ...}`` because tool inputs must be objects, and unwrapped on the
  way back. With thinking on the API forbids forced tools, so the system prompt asks for JSON only
  (`schema_instruction`) and the gateway validates the text.
- ``seed`` is ignored: the API has none.
- Prompt caching: the message marked `Message.cache_point` (the end of a step's stable prefix: its
  instructions, the blueprint, the seed examples) gets ``cache_control: {"type": "ephemeral"}`` on its last
  content block (on the ``system`` block when it is a system message), so the API caches the tools, the
  system prompt and the turns up to it. The API ignores the mark on prefixes shorter than the model's minimum
  (1,024 to 4,096 tokens); cache writes and reads come back as ``cache_creation_input_tokens`` and
  ``cache_read_input_tokens`` and are priced at the route's ``cache_write_price`` and ``cached_input_price``.

Replies: text blocks are concatenated; thinking blocks are returned apart as reasoning, never as the answer.
Anthropic counts thinking tokens inside ``usage.output_tokens`` and does not report them apart, so
``Usage.thinking_tokens`` stays 0 and cost is still right (thinking is billed at the output price).
``stop_reason`` is mapped to the OpenAI vocabulary the gateway uses (``end_turn`` and ``stop_sequence`` →
``stop``, ``max_tokens`` → ``length``, ``refusal`` → ``refusal``, whose content may be empty); other values
pass through unchanged. A 200 whose body is not a Messages API response raises TransientError, as in the
OpenAI provider (proxies sometimes mangle replies).
"""

from __future__ import annotations

from typing import Any

import orjson

from datamill.core.errors import TransientError
from datamill.llm.http.interface import Transport
from datamill.llm.http.transport import HttpTransport
from datamill.llm.limits.headers import read_rate_limits
from datamill.llm.providers.base import api_key, raise_for_status
from datamill.llm.structured import schema_instruction
from datamill.llm.types import ChatRequest, ImagePart, Message, ProviderReply, Route, Usage

DEFAULT_BASE_URL = "https://api.anthropic.com"
ANTHROPIC_VERSION = "2023-06-01"
#: Answer cap when the request gives none (the API has no default of its own).
DEFAULT_MAX_TOKENS = 1024
#: The smallest thinking budget the API accepts.
MIN_THINKING_BUDGET = 1024
OUTPUT_TOOL = "output"
#: Marks the end of the prompt prefix Anthropic caches (5 minutes, refreshed on every hit).
CACHE_CONTROL = {"type": "ephemeral"}
_WRAP_KEY = "value"

_STOP_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "tool_use": "stop",
    "max_tokens": "length",
    "refusal": "refusal",
}


class AnthropicProvider:
    """Calls Anthropic's Messages API through the gateway's shared transport, or its own when given none."""

    def __init__(self, transport: Transport | None = None) -> None:
        self._owns_transport = transport is None
        self._transport = transport if transport is not None else HttpTransport()

    async def complete(self, route: Route, request: ChatRequest) -> ProviderReply:
        """Send one request and return its text, usage and finish reason.

        Raises:
            ConfigError: the route's key variable is not set.
            RateLimitedError, TransientError, PermanentModelError: the API refused or failed, or sent a
                malformed body (TransientError).
        """
        headers = _headers(route, api_key(route))
        payload, wrapped = build_payload(route, request)
        base = (route.base_url or DEFAULT_BASE_URL).rstrip("/")
        reply = await self._transport.post_json(
            f"{base}/v1/messages", payload, headers=headers, timeout_s=route.timeout_s, proxy=route.proxy
        )
        raise_for_status(reply, route)
        result = parse_reply(reply.body, route, unwrap=wrapped)
        result.rate_limits = read_rate_limits(reply.headers)
        return result

    async def aclose(self) -> None:
        """Close the transport if this provider opened it; a shared one belongs to the gateway."""
        if self._owns_transport:
            await self._transport.aclose()


def _headers(route: Route, key: str | None) -> dict[str, str]:
    headers = {"anthropic-version": ANTHROPIC_VERSION}
    if key is not None:
        headers["x-api-key"] = key
    headers.update(route.headers)
    return headers


def build_payload(route: Route, request: ChatRequest) -> tuple[dict[str, Any], bool]:
    """The Messages API body for a request, and whether a non-object schema was wrapped in ``value``."""
    system = [m.content for m in request.messages if m.role == "system"]
    answer_cap = request.max_tokens or DEFAULT_MAX_TOKENS
    payload: dict[str, Any] = {"model": route.model, "messages": _turns(request.messages)}
    wrapped = False
    if route.thinking:
        budget = max(MIN_THINKING_BUDGET, request.thinking_budget or route.default_thinking_budget)
        payload["thinking"] = {"type": "enabled", "budget_tokens": budget}
        payload["max_tokens"] = budget + answer_cap
    else:
        payload["max_tokens"] = answer_cap
        payload["temperature"] = min(1.0, max(0.0, request.temperature))
    if request.json_schema is not None:
        if route.thinking or not route.json_schema:
            system.append(schema_instruction(request.json_schema))
        else:
            input_schema, wrapped = _object_schema(request.json_schema)
            payload["tools"] = [
                {
                    "name": OUTPUT_TOOL,
                    "description": "Record the answer. Call this exactly once with the complete answer.",
                    "input_schema": input_schema,
                }
            ]
            payload["tool_choice"] = {"type": "tool", "name": OUTPUT_TOOL}
    if system:
        payload["system"] = _system(request.messages, system)
    if request.stop:
        payload["stop_sequences"] = list(request.stop)
    return payload, wrapped


def _system(messages: tuple[Message, ...], texts: list[str]) -> str | list[dict[str, Any]]:
    """The ``system`` field: one string, or text blocks when the stable prefix ends in a system message.

    ``texts`` are the system messages' texts in order, plus any instruction the provider added after them.
    The block that ends the prefix carries ``cache_control``; system text after it (a row's own system
    message) goes in a second block, outside the cached prefix.
    """
    point = _cache_point(messages)
    if point is None or messages[point].role != "system":
        return "\n\n".join(texts)
    cut = sum(1 for m in messages[: point + 1] if m.role == "system")
    blocks: list[dict[str, Any]] = [
        {"type": "text", "text": "\n\n".join(texts[:cut]), "cache_control": CACHE_CONTROL}
    ]
    if texts[cut:]:
        blocks.append({"type": "text", "text": "\n\n".join(texts[cut:])})
    return blocks


def _cache_point(messages: tuple[Message, ...]) -> int | None:
    """The index of the last message marked as the end of the stable prefix, if any."""
    for i in range(len(messages) - 1, -1, -1):
        if messages[i].cache_point:
            return i
    return None


def _turns(messages: tuple[Message, ...]) -> list[dict[str, Any]]:
    """User and assistant turns in order; consecutive turns of one role are merged, as the API expects.

    A turn with images is sent as content blocks: the images (base64 or URL sources), then the text. The
    message that ends the stable prefix (`Message.cache_point`) gets ``cache_control`` on its last block.
    """
    point = _cache_point(messages)
    turns: list[dict[str, Any]] = []
    for i, message in enumerate(messages):
        if message.role == "system":
            continue
        blocks = [_image_block(image) for image in message.images]
        blocks.append({"type": "text", "text": message.content})
        if i == point:
            blocks[-1]["cache_control"] = CACHE_CONTROL
        if turns and turns[-1]["role"] == message.role:
            turns[-1]["blocks"].extend(blocks)
        else:
            turns.append({"role": message.role, "blocks": blocks})
    return [{"role": t["role"], "content": _flatten(t["blocks"])} for t in turns]


def _flatten(blocks: list[dict[str, Any]]) -> str | list[dict[str, Any]]:
    """Text-only turns stay plain strings (the common, compact form); a cache mark needs blocks."""
    if all(b["type"] == "text" and "cache_control" not in b for b in blocks):
        return "\n\n".join(b["text"] for b in blocks)
    return blocks


def _image_block(image: ImagePart) -> dict[str, Any]:
    if image.data is not None:
        source = {"type": "base64", "media_type": image.media_type, "data": image.base64()}
    else:
        source = {"type": "url", "url": image.url or ""}
    return {"type": "image", "source": source}


def _object_schema(schema: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    if schema.get("type") == "object":
        return schema, False
    return {"type": "object", "properties": {_WRAP_KEY: schema}, "required": [_WRAP_KEY]}, True


def parse_reply(body: bytes, route: Route, *, unwrap: bool = False) -> ProviderReply:
    """Turn a Messages API response body into a `ProviderReply`.

    Raises:
        TransientError: the body is not a Messages API response.
    """
    try:
        return _parse_message(orjson.loads(body), unwrap)
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as exc:
        shown = body[:200].decode("utf-8", "replace")
        raise TransientError(f"{route.name}: malformed Messages API response ({exc!r}): {shown!r}") from None


def _parse_message(body: dict[str, Any], unwrap: bool) -> ProviderReply:
    texts: list[str] = []
    thinking: list[str] = []
    tool_text: str | None = None
    for block in body["content"] or []:
        kind = block.get("type")
        if kind == "text":
            texts.append(block.get("text", ""))
        elif kind == "thinking":
            thinking.append(block.get("thinking", ""))
        elif kind == "tool_use" and block.get("name") == OUTPUT_TOOL:
            data = block.get("input")
            if unwrap and isinstance(data, dict):
                data = data.get(_WRAP_KEY)
            tool_text = orjson.dumps(data).decode()
        # thinking blocks are the model's scratch work, kept apart; redacted_thinking holds no readable text.
    usage = body.get("usage") or {}
    written = int(usage.get("cache_creation_input_tokens") or 0)
    read = int(usage.get("cache_read_input_tokens") or 0)
    input_tokens = int(usage.get("input_tokens") or 0) + written + read
    stop_reason = body.get("stop_reason")
    return ProviderReply(
        text=tool_text if tool_text is not None else "".join(texts),
        usage=Usage(
            input_tokens=input_tokens,
            output_tokens=int(usage.get("output_tokens") or 0),
            cached_input_tokens=read,
            cache_write_tokens=written,
        ),
        finish_reason=_STOP_REASONS.get(stop_reason, stop_reason) if stop_reason else None,
        reasoning="\n\n".join(t for t in thinking if t) or None,
    )
