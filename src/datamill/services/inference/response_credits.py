"""What a ``responses`` call reserves before the model is called, and what it is charged after.

A call holds the credit rule of every paid job: before the model is called it reserves the most the call can
cost from the tenant's balance, in one conditional update (`datamill.store.runs.reserve_credits`: the
balance must cover it, so calls made at the same time can never take it below zero); when the balance does
not cover it the call is refused with 402 naming ``max_output_tokens`` and nothing is sent to the model.
Once the call is over it is charged what the provider billed and the rest goes back, once: also when the
model call fails (a call the provider billed nothing for gets everything back) and when the client has gone.

The most a call can cost, in USD, over the replies the gateway may be billed for (a refusal, a cut, an empty
or a filtered reply is asked again, up to ``RetryPolicy.max_reply_attempts`` = R replies; a cut one with twice
the output cap):

    Σ over k = 0 … R−1 of (input × input price + (cap × 2^k + thinking) × output price) / 1,000,000

- ``input``: the conversation's tokens counted with datamill's tokenizer (`datamill.text.tokenizer`), chat
  markup included, priced at the route's highest input price (uncached, cache read or cache write);
- ``cap``: the request's ``max_output_tokens``, else the route's ``max_output_tokens`` (4096 unless the
  routing file says otherwise); the model is sent that cap, so no reply is longer;
- ``thinking``: on a thinking route, its ``default_thinking_budget`` (thinking is billed as output).

Credits are that times the price table's ``credits_per_usd``, rounded up to a millionth of a credit; what a
call is charged is the provider's bill times ``credits_per_usd`` (cached input priced as billed), rounded to
a millionth. A provider's tokenizer can count more input tokens than datamill's, and a reply the provider
billed but that never arrived is asked again: a bill over the reservation is charged the reservation, never
more, so a call never takes more than it reserved.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence

from datamill.core.credits import PriceTable
from datamill.core.errors import Issue
from datamill.llm.retry import RetryPolicy
from datamill.llm.types import Message, Route
from datamill.services.adaptation.launch import InsufficientCreditsError
from datamill.text.tokenizer import Tokenizer, default_tokenizer

#: Credits are reserved and charged to a millionth.
_STEP = 1_000_000


class ResponseCreditsError(InsufficientCreditsError):
    """The tenant's balance does not cover a ``responses`` call's reservation (HTTP 402, naming the field)."""

    def __init__(self, needed: float, balance: float, detail: str) -> None:
        super().__init__(needed=needed, balance=balance)
        reason = f"the call may cost up to {needed:g} credits ({detail}) and the balance is {balance:g}"
        self.args = (
            f"insufficient credits: {reason}; lower max_output_tokens, shorten the input or ask the operator "
            "for more (datamill tenants credit)",
        )
        self.issues = (Issue("max_output_tokens", reason),)

    def __str__(self) -> str:
        return str(self.args[0])


class ResponsePricing:
    """Prices ``responses`` calls: the reservation before the call and the charge after it.

    Args:
        prices: the operator's price table (``credits_per_usd``).
        tokenizer: counts the conversation's input tokens (None: `default_tokenizer`, made on first use).
    """

    def __init__(self, prices: PriceTable, tokenizer: Tokenizer | None = None) -> None:
        self._prices = prices
        self._tokenizer = tokenizer
        self._lock = threading.Lock()

    def input_tokens(self, conversation: Sequence[Message]) -> int:
        """The conversation's tokens by datamill's tokenizer (counts are made one at a time)."""
        with self._lock:
            if self._tokenizer is None:
                self._tokenizer = default_tokenizer()
            return self._tokenizer.count_messages(conversation)

    def reservation(self, route: Route, input_tokens: int, cap: int, retry: RetryPolicy) -> float:
        """The credits a call reserves: the most it can cost (see the module docstring)."""
        thinking = route.default_thinking_budget if route.thinking else 0
        input_price = max(
            route.input_price,
            route.input_price if route.cached_input_price is None else route.cached_input_price,
            route.input_price if route.cache_write_price is None else route.cache_write_price,
        )
        usd = 0.0
        for attempt in range(max(1, retry.max_reply_attempts)):
            usd += input_tokens * input_price + (cap * 2**attempt + thinking) * route.output_price
        return math.ceil(usd / 1_000_000 * self._prices.credits_per_usd * _STEP) / _STEP

    @staticmethod
    def detail(route: Route, input_tokens: int, cap: int, retry: RetryPolicy) -> str:
        """What a reservation covers, in words (for the 402)."""
        thinking = route.default_thinking_budget if route.thinking else 0
        attempts = max(1, retry.max_reply_attempts)
        output = sum(cap * 2**attempt + thinking for attempt in range(attempts))
        replies = f"over up to {attempts} replies" if attempts > 1 else "in one reply"
        return f"{input_tokens} input tokens a reply and up to {output} output tokens {replies}"

    def charge(self, cost_usd: float, reserved: float) -> float:
        """What a call is charged for a bill of ``cost_usd``: that in credits, at most ``reserved``."""
        return min(round(cost_usd * self._prices.credits_per_usd, 6), reserved)
