"""Typed values that cross the gateway: requests, replies, usage and routes."""

from __future__ import annotations

import base64
import hashlib
import ipaddress
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

#: Why ``host`` at an address may not be reached (a sentence naming what would allow it), or None if it may.
AddressCheck = Callable[[str, ipaddress.IPv4Address | ipaddress.IPv6Address], str | None]

Role = Literal["system", "user", "assistant"]


@dataclass(frozen=True, slots=True)
class ImagePart:
    """An image sent with a message: a URL the provider fetches, or the bytes themselves."""

    url: str | None = None
    data: bytes | None = None
    media_type: str = "image/png"

    def base64(self) -> str:
        return base64.b64encode(self.data or b"").decode("ascii")

    def data_uri(self) -> str:
        """The image as a ``data:`` URI (bytes), or its URL."""
        if self.data is None:
            return self.url or ""
        return f"data:{self.media_type};base64,{self.base64()}"

    def digest(self) -> str:
        """What identifies the image in a cache key: a hash of its bytes, or its URL."""
        if self.data is not None:
            return "sha256:" + hashlib.sha256(self.data).hexdigest()
        return "url:" + (self.url or "")


@dataclass(frozen=True, slots=True)
class Message:
    """One turn. ``images`` go with the text to vision-capable routes (``Route.vision``).

    ``cache_point`` marks the end of a request's stable prefix: the turns up to and including this one are
    the same in many requests (a step's instructions, the blueprint, the seed examples), and what follows
    is per row. Providers that cache prompt prefixes on request (Anthropic's ``cache_control``) mark it;
    the others cache matching prefixes on their own. It is not part of the response-cache key.
    """

    role: Role
    content: str
    images: tuple[ImagePart, ...] = ()
    cache_point: bool = False


@dataclass(frozen=True, slots=True)
class ChatRequest:
    """One chat-completion call, independent of any provider.

    Attributes:
        messages: the conversation, system message first when there is one.
        max_tokens: cap on output tokens (None lets the provider decide).
        temperature: sampling temperature.
        json_schema: when set, the reply must be a JSON value matching this schema.
        thinking_budget: extended-thinking token budget; only used by `-thinking` routes.
        stop: stop sequences.
        seed: sampling seed where the provider honours one.
        grammar_max_chars: for a provider that constrains its decoding to ``json_schema`` (the local model):
            top-level string properties of the reply, each with the most characters the grammar lets the model
            write there (a judge's rationale), so a small model's free text cannot run the reply past
            ``max_tokens``. It is no part of the schema: other providers ignore it and the reply is
            validated against ``json_schema`` alone.
    """

    messages: tuple[Message, ...]
    max_tokens: int | None = None
    temperature: float = 0.7
    json_schema: dict[str, Any] | None = None
    thinking_budget: int | None = None
    stop: tuple[str, ...] = ()
    seed: int | None = None
    grammar_max_chars: dict[str, int] | None = None


@dataclass(slots=True)
class Usage:
    """Tokens one or more calls used, as the provider reported them.

    ``input_tokens`` counts every prompt token; ``cached_input_tokens`` (read from the provider's prompt
    cache) and ``cache_write_tokens`` (written to it, which Anthropic bills above the input price) are the
    parts of it that are billed at other prices (`Route.cost`).
    """

    input_tokens: int = 0
    output_tokens: int = 0
    thinking_tokens: int = 0
    cached_input_tokens: int = 0
    cache_write_tokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.input_tokens + other.input_tokens,
            self.output_tokens + other.output_tokens,
            self.thinking_tokens + other.thinking_tokens,
            self.cached_input_tokens + other.cached_input_tokens,
            self.cache_write_tokens + other.cache_write_tokens,
        )

    def add(self, other: Usage) -> None:
        """Add ``other`` to these counts in place."""
        self.input_tokens += other.input_tokens
        self.output_tokens += other.output_tokens
        self.thinking_tokens += other.thinking_tokens
        self.cached_input_tokens += other.cached_input_tokens
        self.cache_write_tokens += other.cache_write_tokens

    def to_list(self) -> list[int]:
        """The counts in field order (what the response cache stores; `Usage(*values)` reads it back)."""
        return [
            self.input_tokens,
            self.output_tokens,
            self.thinking_tokens,
            self.cached_input_tokens,
            self.cache_write_tokens,
        ]

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens + self.thinking_tokens


@dataclass(frozen=True, slots=True)
class BudgetReading:
    """What a provider said about one of its per-minute budgets (requests or tokens) in a reply.

    Attributes:
        remaining: what is left now.
        limit: the budget per minute, when the provider said.
        reset_s: seconds until the budget is full again, when the provider said.
    """

    remaining: float
    limit: float | None = None
    reset_s: float | None = None


@dataclass(frozen=True, slots=True)
class RateLimits:
    """The rate-limit headers of one reply: the provider's requests and tokens budgets, as far as it said."""

    requests: BudgetReading | None = None
    tokens: BudgetReading | None = None


@dataclass(slots=True)
class ProviderReply:
    """What a provider returns for one request, before the gateway adds cost and caching.

    Attributes:
        text: the answer text as the provider sent it (reasoning tags included, when the model wrote them).
        usage: tokens billed for this request.
        finish_reason: why generation stopped, in OpenAI's words: ``stop``, ``length`` (the token limit),
            ``content_filter``, ``refusal``; other values as the provider sent them.
        refusal: the provider's own refusal message (OpenAI's ``message.refusal``), when it sent one.
        reasoning: reasoning the provider returned apart from the answer (``reasoning_content``, thinking
            blocks and parts).
        rate_limits: what the reply's rate-limit headers said about the provider's budgets, when it had any.
    """

    text: str
    usage: Usage
    finish_reason: str | None = None
    refusal: str | None = None
    reasoning: str | None = None
    rate_limits: RateLimits | None = None


@dataclass(slots=True)
class ChatResult:
    """The gateway's answer to one call."""

    text: str
    usage: Usage
    model: str
    latency_s: float
    cost_usd: float
    cached: bool = False
    data: Any = None
    finish_reason: str | None = None
    #: The model's reasoning, split off the answer (``<think>`` text, ``reasoning_content``, thinking blocks).
    reasoning: str | None = None


@dataclass(frozen=True, slots=True)
class Route:
    """Where a public model name goes: provider kind, endpoint, key variable and prices.

    Attributes:
        name: the public model name asked for (e.g. ``anthropic/claude-haiku-4-5``).
        provider: provider kind (``openai``, ``anthropic``, ``gemini``, ``local``, ``fake``).
        model: the provider's own model id (for ``local``: ``bundled:smollm2`` or a GGUF path).
        base_url: endpoint root for HTTP providers.
        api_key_env: name of the environment variable holding the key (None: no key).
        api_key: the key, read from that variable once when the route was resolved (None: unset).
        input_price: USD per million input tokens.
        output_price: USD per million output (and thinking) tokens.
        cached_input_price: USD per million input tokens read from the provider's prompt cache (None: the
            input price).
        cache_write_price: USD per million input tokens written to the prompt cache (None: the input price).
        batch_discount: the fraction taken off every price of a call sent through the provider's batch API
            (0.5: half price).
        thinking: extended thinking is on (the name ends in ``-thinking``).
        default_thinking_budget: budget used when a request does not give one.
        max_output_tokens: the output cap of a ``responses`` call that sets none (its credit reservation
            is priced on it, so the model is sent it as the call's cap).
        max_concurrency: ceiling for the adaptive concurrency limiter.
        initial_concurrency: calls the first round trip may send (None: the ceiling when a budget is
            declared, else `datamill.llm.limits.concurrency.INITIAL_WINDOW`); at most ``max_concurrency``.
        timeout_s: per-request timeout.
        json_schema: the provider enforces JSON schemas natively.
        headers: extra HTTP headers sent with every request.
        vision: the model accepts images in messages.
        proxy: the HTTP proxy for this route's requests (None: the proxy environment variables decide;
            ``"none"``: connect directly).
        batch: send this route's calls through the provider's batch API (True), never (False), or as the
            run asks (None: ``--batch`` / ``Gateway(batch=True)``).
        batch_poll_s: seconds between two status calls of a batch in flight.
        tokens_per_minute: the provider's token budget the gateway paces to (None: none declared).
        requests_per_minute: the provider's request budget the gateway paces to (None: none declared).
        address_check: set on a route whose endpoint a tenant named (not the operator): its calls connect
            directly, only to addresses this check passes, and never through a provider batch.
    """

    name: str
    provider: str
    model: str
    base_url: str | None = None
    api_key_env: str | None = None
    input_price: float = 0.0
    output_price: float = 0.0
    cached_input_price: float | None = None
    cache_write_price: float | None = None
    batch_discount: float = 0.0
    thinking: bool = False
    default_thinking_budget: int = 2048
    max_output_tokens: int = 4096
    max_concurrency: int = 64
    initial_concurrency: int | None = None
    timeout_s: float = 120.0
    json_schema: bool = True
    headers: tuple[tuple[str, str], ...] = field(default_factory=tuple)
    vision: bool = False
    proxy: str | None = None
    batch: bool | None = None
    batch_poll_s: float = 30.0
    tokens_per_minute: int | None = None
    requests_per_minute: int | None = None
    api_key: str | None = field(default=None, repr=False, compare=False)
    address_check: AddressCheck | None = field(default=None, repr=False, compare=False)

    def cost(self, usage: Usage, *, batched: bool = False) -> float:
        """What the provider bills for ``usage``, in USD.

        Uncached input at the input price, cache reads at the cached-input price, cache writes at the
        cache-write price, output and thinking at the output price; a batched call (sent through the
        provider's batch API) gets ``batch_discount`` off the whole.
        """
        cached = usage.cached_input_tokens
        written = usage.cache_write_tokens
        uncached = max(0, usage.input_tokens - cached - written)
        cached_price = self.input_price if self.cached_input_price is None else self.cached_input_price
        write_price = self.input_price if self.cache_write_price is None else self.cache_write_price
        total = (
            uncached * self.input_price
            + cached * cached_price
            + written * write_price
            + (usage.output_tokens + usage.thinking_tokens) * self.output_price
        ) / 1_000_000
        return total * (1.0 - self.batch_discount) if batched else total
