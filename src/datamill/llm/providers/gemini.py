"""Gemini API provider (``POST {base_url}/v1beta/models/{model}:generateContent``).

How a provider-neutral `ChatRequest` maps onto ``generateContent``:

- System messages go to ``systemInstruction``; user and assistant turns to ``contents`` with the roles
  ``user`` and ``model`` (consecutive messages of one role become one turn with several parts). Gemini caches
  repeated prompt prefixes on its own (implicit caching), so the stable prefix needs no mark.
- ``generationConfig`` carries ``temperature``, ``maxOutputTokens``, ``stopSequences`` and ``seed`` when
  given.
- A JSON schema sets ``responseMimeType: application/json`` and ``responseJsonSchema`` (native constrained
  output). On a route marked ``json_schema: false`` only the MIME type is sent and the system instruction
  carries the schema (`schema_instruction`).
- Thinking routes send ``thinkingConfig.thinkingBudget`` (the request's budget or the route's default). Gemini
  counts thinking inside ``maxOutputTokens``, so the provider sends ``budget + answer cap`` when a cap is
  given. Non-thinking routes send no ``thinkingConfig`` at all: the model's own default applies (a budget of 0
  is rejected by models that cannot turn thinking off).

Replies: text parts of the first candidate are concatenated; parts marked ``thought: true`` are returned apart
as reasoning. Usage maps ``promptTokenCount``, ``candidatesTokenCount`` and ``thoughtsTokenCount`` (billed at
the output price); ``cachedContentTokenCount``, the part of the prompt read from Gemini's implicit prompt
cache, is billed at the route's cached-input price. ``finishReason`` ``MAX_TOKENS`` becomes ``length``, and
``SAFETY``, ``RECITATION`` and the other block reasons ``content_filter``, with or without parts (the gateway
rejects both, see `datamill.llm.replies`). A prompt blocked by safety (``promptFeedback.blockReason``, or no
candidates) raises ContentFilteredError marked not retryable: the same request would be blocked again. A 200
whose body is not a Gemini response raises TransientError, as in the OpenAI provider.
"""

from __future__ import annotations

from typing import Any

import orjson

from datamill.core.errors import ContentFilteredError, PermanentModelError, TransientError
from datamill.llm.http.interface import Transport
from datamill.llm.http.transport import HttpTransport
from datamill.llm.limits.headers import read_rate_limits
from datamill.llm.providers.base import api_key, raise_for_status
from datamill.llm.structured import schema_instruction
from datamill.llm.types import ChatRequest, Message, ProviderReply, Route, Usage

DEFAULT_BASE_URL = "https://generativelanguage.googleapis.com"

_ROLES = {"user": "user", "assistant": "model"}
_BLOCKED = {
    "SAFETY",
    "PROHIBITED_CONTENT",
    "BLOCKLIST",
    "SPII",
    "RECITATION",
    "IMAGE_SAFETY",
    "IMAGE_PROHIBITED_CONTENT",
    "IMAGE_RECITATION",
}
_FINISH_REASONS = {"STOP": "stop", "MAX_TOKENS": "length"}


class GeminiProvider:
    """Calls the Gemini API through the gateway's shared HTTP transport (or its own, when given none)."""

    def __init__(self, transport: Transport | None = None) -> None:
        self._owns_transport = transport is None
        self._transport = transport if transport is not None else HttpTransport()

    async def complete(self, route: Route, request: ChatRequest) -> ProviderReply:
        """Send one request and return its text, usage and finish reason.

        Raises:
            ConfigError: the route's key variable is not set.
            RateLimitedError, TransientError, PermanentModelError: the API refused, failed or blocked the
                request, or sent a malformed body (TransientError).
        """
        key = api_key(route)
        headers = dict(route.headers)
        if key is not None:
            headers["x-goog-api-key"] = key
        base = (route.base_url or DEFAULT_BASE_URL).rstrip("/")
        model = route.model.removeprefix("models/")
        reply = await self._transport.post_json(
            f"{base}/v1beta/models/{model}:generateContent",
            build_payload(route, request),
            headers=headers,
            timeout_s=route.timeout_s,
            proxy=route.proxy,
        )
        raise_for_status(reply, route)
        result = parse_reply(reply.body, route)
        result.rate_limits = read_rate_limits(reply.headers)
        return result

    async def aclose(self) -> None:
        """Close the transport if this provider opened it; a shared one belongs to the gateway."""
        if self._owns_transport:
            await self._transport.aclose()


def build_payload(route: Route, request: ChatRequest) -> dict[str, Any]:
    """The ``generateContent`` body for a request."""
    system = [m.content for m in request.messages if m.role == "system"]
    config: dict[str, Any] = {"temperature": request.temperature}
    answer_cap = request.max_tokens
    if route.thinking:
        budget = request.thinking_budget or route.default_thinking_budget
        config["thinkingConfig"] = {"thinkingBudget": budget}
        if answer_cap is not None:
            answer_cap += budget
    if answer_cap is not None:
        config["maxOutputTokens"] = answer_cap
    if request.stop:
        config["stopSequences"] = list(request.stop)
    if request.seed is not None:
        config["seed"] = request.seed
    if request.json_schema is not None:
        config["responseMimeType"] = "application/json"
        if route.json_schema:
            config["responseJsonSchema"] = request.json_schema
        else:
            system.append(schema_instruction(request.json_schema))
    payload: dict[str, Any] = {"contents": _contents(request.messages), "generationConfig": config}
    if system:
        payload["systemInstruction"] = {"parts": [{"text": "\n\n".join(system)}]}
    return payload


def _contents(messages: tuple[Message, ...]) -> list[dict[str, Any]]:
    """User and model turns; consecutive messages of one role become one turn with several parts."""
    contents: list[dict[str, Any]] = []
    for m in messages:
        if m.role == "system":
            continue
        role = _ROLES[m.role]
        if contents and contents[-1]["role"] == role:
            contents[-1]["parts"].extend(_parts(m))
        else:
            contents.append({"role": role, "parts": _parts(m)})
    return contents


def _parts(message: Message) -> list[dict[str, Any]]:
    """Text, then images as ``inline_data``. Gemini does not fetch arbitrary URLs, so images need bytes."""
    parts: list[dict[str, Any]] = [{"text": message.content}]
    for image in message.images:
        if image.data is None:
            raise PermanentModelError(
                f"Gemini needs image bytes, not a URL ({image.url}); use file paths or embedded image bytes"
            )
        parts.append({"inline_data": {"mime_type": image.media_type, "data": image.base64()}})
    return parts


def parse_reply(body: bytes, route: Route) -> ProviderReply:
    """Turn a ``generateContent`` response body into a `ProviderReply`.

    Raises:
        ContentFilteredError: the prompt was blocked.
        TransientError: the body is not a Gemini response.
    """
    try:
        return _parse_response(orjson.loads(body), route)
    except (orjson.JSONDecodeError, KeyError, IndexError, TypeError, ValueError, AttributeError) as exc:
        shown = body[:200].decode("utf-8", "replace")
        raise TransientError(f"{route.name}: malformed Gemini response ({exc!r}): {shown!r}") from None


def _parse_response(body: dict[str, Any], route: Route) -> ProviderReply:
    block_reason = (body.get("promptFeedback") or {}).get("blockReason")
    candidates = body.get("candidates") or []
    if block_reason or not candidates:
        reason = block_reason or "no candidates returned"
        # The same prompt would be blocked again: not worth a retry.
        raise ContentFilteredError(f"{route.name}: Gemini blocked the prompt: {reason}", retryable=False)
    candidate = candidates[0]
    parts = (candidate.get("content") or {}).get("parts") or []
    text = "".join(p.get("text", "") for p in parts if not p.get("thought"))
    thoughts = "".join(p.get("text", "") for p in parts if p.get("thought"))
    finish = candidate.get("finishReason")
    usage = body.get("usageMetadata") or {}
    return ProviderReply(
        text=text,
        usage=Usage(
            input_tokens=int(usage.get("promptTokenCount") or 0),
            output_tokens=int(usage.get("candidatesTokenCount") or 0),
            thinking_tokens=int(usage.get("thoughtsTokenCount") or 0),
            cached_input_tokens=int(usage.get("cachedContentTokenCount") or 0),
        ),
        finish_reason=_finish_reason(finish),
        reasoning=thoughts or None,
    )


def _finish_reason(finish: str | None) -> str | None:
    if finish is None:
        return None
    if finish in _BLOCKED:
        return "content_filter"
    return _FINISH_REASONS.get(finish, finish.lower())
