"""Replies a provider billed that were never read whole, and the usage they are counted with.

The providers bill a request once their model has answered it, whether or not the client reads the answer:
OpenAI, Anthropic and Gemini finish a non-streaming request whose client has gone and bill it in full. So an
attempt that was sent and then

- got no reply before its deadline (the provider finishes it anyway), or
- lost its connection after a 2xx status line arrived (the reply was cut mid-body)

is counted as billed: the transport raises `UnreadReplyError` and the gateway retries it like any transient
failure. An attempt answered with an error status (429, 5xx, 4xx) costs nothing, as the providers document,
and neither does one whose connection failed before any reply arrived.

The usage of an unread reply is not known. When a retry of the same request is answered, each unread
attempt is counted with that answer's usage (the same prompt, and the same request gets the same kind of
answer); the ledger counts the attempts under ``unread``. When no attempt is answered, each is counted with
the prompt's estimated input tokens (`CHARS_PER_TOKEN` characters a token) and no output: a lower bound.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from datamill.llm.types import ChatRequest, Route, Usage

#: Characters per token used to estimate the prompt of an unread reply that was never answered on retry.
CHARS_PER_TOKEN = 4


@dataclass(slots=True)
class Billed:
    """What one gateway call has been billed so far: the usage of every answered or unread attempt."""

    usage: Usage = field(default_factory=Usage)
    #: Attempts billed whose reply was never read, not yet counted in ``usage``.
    pending_unread: int = 0
    #: Unread attempts counted in ``usage``.
    unread: int = 0
    #: The part of ``usage`` answered through a provider batch (billed at the batch price); None: none.
    batched: Usage | None = None

    def answered_in_batch(self, usage: Usage) -> None:
        """A request was answered by a provider batch: count it, at the batch price."""
        self.usage.add(usage)
        if self.batched is None:
            self.batched = Usage()
        self.batched.add(usage)

    def cost(self, route: Route) -> float:
        """What the provider bills for ``usage``: the batched part with the route's batch discount."""
        batched = self.batched
        if batched is None or (not batched.total_tokens and not batched.input_tokens):
            return route.cost(self.usage)
        usage = self.usage
        online = Usage(
            usage.input_tokens - batched.input_tokens,
            usage.output_tokens - batched.output_tokens,
            usage.thinking_tokens - batched.thinking_tokens,
            usage.cached_input_tokens - batched.cached_input_tokens,
            usage.cache_write_tokens - batched.cache_write_tokens,
        )
        return route.cost(online) + route.cost(batched, batched=True)

    def answered(self, usage: Usage) -> None:
        """An attempt was answered: count it, and each pending unread attempt with its usage."""
        self.usage.add(usage)
        for _ in range(self.pending_unread):
            self.usage.add(usage)
        self.unread += self.pending_unread
        self.pending_unread = 0

    def gave_up(self, request: ChatRequest) -> None:
        """No attempt will be answered: count each pending unread attempt at its estimated prompt."""
        if not self.pending_unread:
            return
        chars = sum(len(m.content) for m in request.messages)
        estimate = Usage(input_tokens=math.ceil(chars / CHARS_PER_TOKEN))
        for _ in range(self.pending_unread):
            self.usage.add(estimate)
        self.unread += self.pending_unread
        self.pending_unread = 0
