"""What the simulator received and billed: one `LogEntry` per request, in arrival order."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(slots=True)
class Billed:
    """The tokens one request is billed for, in provider-neutral terms.

    Attributes:
        input_tokens: every prompt token, cached ones included.
        cached_input_tokens: prompt tokens read from the prompt cache (OpenAI ``cached_tokens``, Anthropic
            ``cache_read_input_tokens``, Gemini ``cachedContentTokenCount``).
        cache_write_tokens: prompt tokens written to the cache (Anthropic ``cache_creation_input_tokens``).
        output_tokens: answer tokens.
        reasoning_tokens: reasoning tokens (billed at the output price).
    """

    input_tokens: int = 0
    cached_input_tokens: int = 0
    cache_write_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int = 0

    def __add__(self, other: Billed) -> Billed:
        return Billed(
            self.input_tokens + other.input_tokens,
            self.cached_input_tokens + other.cached_input_tokens,
            self.cache_write_tokens + other.cache_write_tokens,
            self.output_tokens + other.output_tokens,
            self.reasoning_tokens + other.reasoning_tokens,
        )

    def cost_usd(
        self,
        input_price: float,
        output_price: float,
        *,
        cached_input_price: float | None = None,
        cache_write_price: float | None = None,
    ) -> float:
        """The cost at prices in USD per million tokens (unpriced cache tokens cost the input price)."""
        cached = input_price if cached_input_price is None else cached_input_price
        write = input_price if cache_write_price is None else cache_write_price
        uncached = self.input_tokens - self.cached_input_tokens - self.cache_write_tokens
        return (
            uncached * input_price
            + self.cached_input_tokens * cached
            + self.cache_write_tokens * write
            + (self.output_tokens + self.reasoning_tokens) * output_price
        ) / 1_000_000


@dataclass(slots=True)
class LogEntry:
    """One request the simulator received.

    Attributes:
        number: 1 for the first request, in arrival order.
        api: ``openai``, ``anthropic`` or ``gemini``.
        path: the request path.
        headers: the request headers, names in lower case.
        body: the request body as parsed JSON (None when it was not JSON).
        model: the model id asked for.
        attempt: 1 the first time this exact request (path and body) arrived, 2 the next time, ...
        behaviour: the behaviour applied (None: a clean answer).
        status: the HTTP status answered (0 until answered).
        text: the content text sent (None for an error).
        billed: the tokens billed (None when nothing was billed: an error answer).
        prompt: everything the model read, in order (system text and turns).
        method: the HTTP method.
        batch: the id of the batch a request came in (None: an online request); batch requests are billed
            at the batch price.
        operation: for a call of a batch API rather than a model request: ``file_upload``,
            ``batch_create``, ``batch_get``, ``batch_list`` or ``batch_results`` (None: a model request).
    """

    number: int
    api: str
    path: str
    headers: dict[str, str]
    body: Any
    model: str = ""
    attempt: int = 1
    behaviour: str | None = None
    status: int = 0
    text: str | None = None
    billed: Billed | None = None
    prompt: str = ""
    method: str = "POST"
    batch: str | None = None
    operation: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(slots=True)
class SimLog:
    """Every request received, with what was answered and billed."""

    entries: list[LogEntry] = field(default_factory=list)

    def __iter__(self) -> Iterator[LogEntry]:
        return iter(self.entries)

    def __len__(self) -> int:
        return len(self.entries)

    def clear(self) -> None:
        self.entries.clear()

    def billed(self, *, batch: bool | None = None) -> Billed:
        """The tokens billed over every request (``batch``: only batch requests, or only online ones)."""
        total = Billed()
        for entry in self.entries:
            if entry.billed is not None and (batch is None or (entry.batch is not None) == batch):
                total = total + entry.billed
        return total

    def cost_usd(
        self,
        input_price: float,
        output_price: float,
        *,
        cached_input_price: float | None = None,
        cache_write_price: float | None = None,
        batch_discount: float = 0.5,
    ) -> float:
        """What the provider bills for every request: batch requests with ``batch_discount`` off."""
        prices = {"cached_input_price": cached_input_price, "cache_write_price": cache_write_price}
        online = self.billed(batch=False).cost_usd(input_price, output_price, **prices)
        batched = self.billed(batch=True).cost_usd(input_price, output_price, **prices)
        return online + batched * (1.0 - batch_discount)

    def answered(self) -> list[LogEntry]:
        """The model requests answered 200 (resets included: they were billed)."""
        return [e for e in self.entries if e.status == 200 and e.operation is None]

    def operations(self, name: str) -> list[LogEntry]:
        """The batch API calls of one kind (``batch_create``, ``file_upload``, ...), in arrival order."""
        return [e for e in self.entries if e.operation == name]

    def with_behaviour(self, name: str) -> list[LogEntry]:
        return [e for e in self.entries if e.behaviour == name]

    def quirk_texts(self) -> set[str]:
        """The non-empty texts sent under a behaviour that made them something other than the answer."""
        clean = {None, "reasoning_field", "slow_first_byte"}
        return {e.text for e in self.entries if e.behaviour not in clean and e.text}

    def prompts(self) -> list[str]:
        """What the model read in each request, in arrival order."""
        return [e.prompt for e in self.entries if e.operation is None]
