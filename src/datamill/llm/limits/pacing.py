"""Pacing to a provider's per-minute budgets: one requests bucket and one tokens bucket per model.

Where the budgets come from:

- declared on the route (``requests_per_minute``, ``tokens_per_minute``): the buckets exist from the first
  call and refill at the declared rate;
- learnt from the rate-limit headers (``x-ratelimit-*``, ``anthropic-ratelimit-*``): a model whose route
  declares nothing gets a bucket for each budget the first time a reply reports its limit, refilling at that
  limit per minute (a declared rate is kept: the route is the user's word).

Every call takes one request and its expected tokens (`TokenEstimator`) when it is sent; a reply settles the
tokens bucket at the real usage. A 429 keeps its request taken (OpenAI documents that rejected requests count
against the requests budget) and gives its tokens back (the provider never ran it).

Each reply that reports a budget's ``remaining`` lowers the bucket to it: the provider admitted the call
with ``remaining`` left, has refilled since the call was sent, and may not have counted the calls sent
after it yet, so the bucket's level may be at most ``remaining + rate × (now - sent) - taken since``. The
level is never raised from a header: between the reply and now, other calls may have spent what it reports.
A 429 without headers empties the buckets (the provider's bucket is empty now).

Buckets hold `BURST_S` seconds of refill, so after a pause the calls resume at the budget's pace rather than
in a burst of a whole minute's worth (the provider's own bucket may be shallower than a minute, or shared
with other clients).
"""

from __future__ import annotations

from dataclasses import dataclass

from datamill.llm.limits.buckets import TokenBucket
from datamill.llm.limits.estimate import TokenEstimator
from datamill.llm.types import BudgetReading, ChatRequest, RateLimits, Usage

#: Seconds of refill a bucket holds.
BURST_S = 0.05


@dataclass(slots=True)
class Ticket:
    """One call's pass through a limiter: what it was charged, and when, for the verdict on its reply."""

    window: int = 0
    tokens: int = 0
    prompt_tokens: int = 0
    output_tokens: int = 0
    #: The output was charged at the request's cap, which the provider counts whatever the answer uses.
    capped: bool = False
    chars: int = 0
    images: int = 0
    sent_at: float = 0.0
    #: The buckets' ``taken`` counters right after this call was charged.
    tokens_mark: float = 0.0
    requests_mark: float = 0.0


class Pacer:
    """The requests and tokens buckets of one (provider, model, endpoint), and its token estimator.

    Args:
        tokens_per_minute: declared tokens budget (None: none, until a header reports one).
        requests_per_minute: declared requests budget (None: likewise).
        cap_counts: the provider counts a request's ``max_tokens`` against the budget (OpenAI and most
            others); False where it counts the output produced (Anthropic).
        now: the loop time.
    """

    __slots__ = ("declared_requests", "declared_tokens", "estimator", "requests", "tokens")

    def __init__(
        self,
        *,
        tokens_per_minute: float | None = None,
        requests_per_minute: float | None = None,
        cap_counts: bool = True,
        now: float,
    ) -> None:
        self.tokens = _bucket(tokens_per_minute, now)
        self.requests = _bucket(requests_per_minute, now)
        self.declared_tokens = self.tokens is not None
        self.declared_requests = self.requests is not None
        self.estimator = TokenEstimator(cap_counts=cap_counts)

    def estimate(self, ticket: Ticket, request: ChatRequest) -> None:
        """Fill the ticket's expected tokens and prompt size."""
        ticket.chars, ticket.images = self.estimator.prompt(request)
        prompt, output, capped = self.estimator.expect(request, ticket.chars, ticket.images)
        ticket.prompt_tokens, ticket.output_tokens, ticket.capped = prompt, output, capped
        ticket.tokens = prompt + output

    def delay(self, tokens: int, now: float) -> float:
        """Seconds until a call expected to use ``tokens`` fits both budgets."""
        wait = 0.0
        if self.requests is not None:
            wait = self.requests.delay(1, now)
        if self.tokens is not None and tokens:
            wait = max(wait, self.tokens.delay(tokens, now))
        return wait

    def take(self, ticket: Ticket, now: float) -> None:
        """Charge a call that is being sent."""
        ticket.sent_at = now
        if self.requests is not None:
            self.requests.take(1)
            ticket.requests_mark = self.requests.taken
        if self.tokens is not None:
            self.tokens.take(ticket.tokens)
            ticket.tokens_mark = self.tokens.taken

    def settle(self, ticket: Ticket, usage: Usage) -> None:
        """A reply came: charge what the provider counts instead of the estimate, and learn from it.

        The real prompt replaces the estimated one; the real output replaces the expected one unless the
        call was charged at its cap and the provider counts the cap (`TokenEstimator.cap_counts`).
        """
        extra = usage.input_tokens - ticket.prompt_tokens
        if not (ticket.capped and self.estimator.cap_counts):
            extra += usage.output_tokens + usage.thinking_tokens - ticket.output_tokens
        if self.tokens is not None:
            self.tokens.settle(extra)
        if ticket.chars or ticket.images:
            self.estimator.observe(ticket.chars, ticket.images, usage)

    def refund(self, ticket: Ticket, *, request: bool) -> None:
        """Give back a call's tokens (a 429: never run), and its request when it was never sent."""
        if self.tokens is not None:
            self.tokens.settle(-ticket.tokens)
        if request and self.requests is not None:
            self.requests.settle(-1)

    @property
    def paces(self) -> bool:
        """Whether any budget is known (declared, or reported by a reply)."""
        return self.requests is not None or self.tokens is not None

    def sync(self, limits: RateLimits, ticket: Ticket, now: float) -> None:
        """Lower the buckets to what a successful reply's headers report; learn budgets first reported."""
        if limits.requests is not None:
            self.requests = self._synced(
                self.requests, self.declared_requests, limits.requests, ticket, ticket.requests_mark, now
            )
        if limits.tokens is not None:
            self.tokens = self._synced(
                self.tokens, self.declared_tokens, limits.tokens, ticket, ticket.tokens_mark, now
            )

    def lower(self, limits: RateLimits, ticket: Ticket, now: float) -> None:
        """Lower the known buckets to what a 429's headers report (a 429 teaches no new budget)."""
        if limits.requests is not None and self.requests is not None:
            self._lower(self.requests, limits.requests, ticket, ticket.requests_mark, now)
        if limits.tokens is not None and self.tokens is not None:
            self._lower(self.tokens, limits.tokens, ticket, ticket.tokens_mark, now)

    def empty(self, now: float) -> None:
        """A 429 that reported nothing: the provider's buckets are empty now."""
        if self.requests is not None:
            self.requests.empty(now)
        if self.tokens is not None:
            self.tokens.empty(now)

    @staticmethod
    def _synced(
        bucket: TokenBucket | None,
        declared: bool,
        reading: BudgetReading,
        ticket: Ticket,
        mark: float,
        now: float,
    ) -> TokenBucket | None:
        if bucket is None:
            if not reading.limit:
                return None  # a remaining count without a limit gives no rate to pace at
            bucket = TokenBucket(reading.limit, burst_s=BURST_S, now=now)
        elif not declared and reading.limit and reading.limit != bucket.per_minute:
            bucket.set_rate(reading.limit, burst_s=BURST_S)
        Pacer._lower(bucket, reading, ticket, mark, now)
        return bucket

    @staticmethod
    def _lower(bucket: TokenBucket, reading: BudgetReading, ticket: Ticket, mark: float, now: float) -> None:
        # A mark of 0 (a call charged before the bucket existed) counts everything taken since: the safe side.
        since_s = now - ticket.sent_at if ticket.sent_at else 0.0
        bucket.lower_to(reading.remaining, since_s, bucket.taken - mark, now)


def exhausted(limits: RateLimits | None, ticket: Ticket) -> bool:
    """Whether a 429 is about a budget: it reported none, or one that had no room for the call.

    A 429 whose headers show room in every budget (a provider shedding load) says nothing about the rate
    the client sends at.
    """
    if limits is None or (limits.requests is None and limits.tokens is None):
        return True
    if limits.requests is not None and limits.requests.remaining < 1:
        return True
    return limits.tokens is not None and limits.tokens.remaining < max(1, ticket.tokens)


def _bucket(per_minute: float | None, now: float) -> TokenBucket | None:
    if not per_minute:
        return None
    return TokenBucket(per_minute, burst_s=BURST_S, now=now)
