"""Retry policy: rate limits and transient failures are counted and delayed separately.

- A 429 (`RateLimitedError`) waits ``Retry-After`` when the provider gave one (capped at
  ``max_retry_after``), else exponential backoff; up to ``max_rate_limit_retries`` retries.
- A transient failure (`TransientError`: 5xx, 408/409, timeouts, dropped connections) waits a jittered
  exponential backoff ("full jitter": uniform in [0, min(max_delay, base_delay * 2**n)]); a call makes at
  most ``max_attempts`` transient attempts in all.
- A connection that cannot be made as configured (`ConnectionConfigError`: DNS, refused, TLS, redirect) is
  not retried: the gateway's route health (`datamill.llm.health`) counts such failures and stops the run
  when they mean the endpoint is dead.
- A reply that is not an answer (`UnusableReplyError`: a refusal, a cut, an empty or filtered reply) is
  asked again at once, up to ``max_reply_attempts`` replies in all; one the provider marks not retryable (a
  blocked prompt) is not.
- Anything else (`PermanentModelError`, `ConfigError`, ...) is never retried.

When the budget is spent the gateway raises an error of the last cause's class whose message says how many
attempts were made and what the last failure was. Tests shrink every delay with ``base_delay``,
``max_delay`` and ``retry_after_scale``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from datamill.core.errors import (
    ModelError,
    RateLimitedError,
    TransientError,
    UnusableReplyError,
)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how long to retry one gateway call.

    Attributes:
        max_attempts: transient attempts in all, the first included (1 disables transient retries).
        max_rate_limit_retries: retries after a 429, counted apart from transient ones.
        max_reply_attempts: replies in all (the first included) when a reply is a refusal, a cut, empty or
            filtered; 1 disables those retries.
        base_delay: first backoff step in seconds.
        max_delay: cap of one backoff step in seconds.
        max_retry_after: cap on a provider's ``Retry-After`` in seconds.
        retry_after_scale: multiplies ``Retry-After`` (tests set it below 1).
        rng: source of jitter (seed it for reproducible delays).
    """

    max_attempts: int = 5
    max_rate_limit_retries: int = 20
    max_reply_attempts: int = 2
    base_delay: float = 0.5
    max_delay: float = 30.0
    max_retry_after: float = 300.0
    retry_after_scale: float = 1.0
    rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)

    def start(self) -> RetryState:
        """Fresh counters for one call (create it on the first failure: the happy path needs none)."""
        return RetryState(self)

    def transient_delay(self, retry: int) -> float:
        """Full-jitter backoff before transient retry number ``retry`` (0-based)."""
        return self.rng.uniform(0.0, min(self.max_delay, self.base_delay * (2.0**retry)))

    def rate_limit_delay(self, retry: int, retry_after: float | None) -> float:
        """Wait before rate-limit retry number ``retry``: the provider's ``Retry-After``, else backoff."""
        if retry_after is not None:
            return min(retry_after, self.max_retry_after) * self.retry_after_scale
        step = min(self.max_delay, self.base_delay * (2.0**retry))
        return step / 2 + self.rng.uniform(0.0, step / 2)


class RetryState:
    """Counts one call's failures and says how long to wait before the next attempt."""

    __slots__ = ("policy", "rate_limited", "transient", "unusable")

    def __init__(self, policy: RetryPolicy) -> None:
        self.policy = policy
        self.rate_limited = 0
        self.transient = 0
        self.unusable = 0

    @property
    def attempts(self) -> int:
        """Requests made so far, this one included: one per failure plus the one that failed last."""
        return self.rate_limited + self.transient + self.unusable

    def next_delay(self, error: ModelError) -> float:
        """Seconds to wait before retrying after ``error``.

        Raises:
            ModelError: ``error`` itself when it is not retryable, or an error of its class saying how many
                attempts were made when the retry budget is spent.
        """
        policy = self.policy
        if isinstance(error, RateLimitedError):
            self.rate_limited += 1
            if self.rate_limited > policy.max_rate_limit_retries:
                raise self._exhausted(error) from error
            return policy.rate_limit_delay(self.rate_limited - 1, error.retry_after)
        if isinstance(error, UnusableReplyError):
            self.unusable += 1
            if not error.retryable or self.unusable >= policy.max_reply_attempts:
                if self.attempts == 1:
                    raise error
                raise self._exhausted(error) from error
            return 0.0
        if isinstance(error, TransientError):
            self.transient += 1
            if self.transient >= policy.max_attempts:
                raise self._exhausted(error) from error
            return policy.transient_delay(self.transient - 1)
        raise error

    def _exhausted(self, last: ModelError) -> ModelError:
        attempts = f"{self.attempts} attempt{'s' if self.attempts != 1 else ''}"
        if isinstance(last, UnusableReplyError):
            # The same class, so the reason a row is rejected with still names what the replies were.
            return type(last)(f"{last} ({attempts})", retryable=last.retryable)
        detail = f"({self.transient} transient failures, {self.rate_limited} rate-limited)"
        message = f"gave up after {attempts} {detail}; last error: {last}"
        if isinstance(last, RateLimitedError):
            return RateLimitedError(message, retry_after=last.retry_after)
        return TransientError(message)
