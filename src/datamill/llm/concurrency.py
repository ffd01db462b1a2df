"""Adaptive concurrency per (provider, model): AIMD that honours ``Retry-After``.

- The limit starts at the route's ``max_concurrency`` (the ceiling).
- Multiplicative decrease: a 429 halves the limit (floor 1), at most once per *window*. A window is the set
  of requests sent under one limit: 429s that answer requests sent before the last decrease belong to the
  burst that caused it and do not halve again. So a burst of 429s halves once.
- A 429 with ``Retry-After`` pauses the whole key: no new request starts until it expires (requests already
  in flight carry on).
- Fast recovery to the last level that held: a 429 means the provider held at least the requests the client
  still has in flight, so after a decrease the limiter remembers the fewest requests left in flight when a
  429 of that burst came back (``recover_to``) and regrows to it at +1 per success (slow start, one round
  trip from a halved limit). Plain additive increase from a halved limit took dozens of round trips, and a
  provider capped at 200 concurrent requests got only ~0.68 of its allowed rate
  (``bench/gateway_throughput.py``).
- Additive increase above that level, i.e. probing: +1 per ``limit * rounds`` successes, about +1 per
  ``rounds`` round trips (TCP's congestion avoidance). A probe that fails (a 429 while above the last level
  that held, or a first burst in which the provider held more than half the limit) multiplies ``rounds`` by
  8 (1, 8, 64), because each failed probe costs a ``Retry-After`` pause (about 5% of the allowed rate per
  probe at 1 s, measured in ``bench/pipeline_throughput.py``); a probe that holds resets it. Adding a whole
  +1 per success above the level would hit the rate limit again straight away.

Cost: O(1) per acquire and release, no tasks. The fast path is a counter; a caller that has to wait parks on
one future in a FIFO; a pause uses one timer per 429 that extends it.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable


class AdaptiveLimiter:
    """A semaphore whose size adapts to rate limiting.

    Usage::

        window = await limiter.acquire()
        try:
            reply = await call()
        except RateLimitedError as exc:
            limiter.release_rate_limited(window, exc.retry_after)
            raise
        except BaseException:
            limiter.release()
            raise
        limiter.release_ok()
    """

    __slots__ = (
        "_credit",
        "_failed_at",
        "_failed_probes",
        "_paused_until",
        "_recover_to",
        "_timer",
        "_waiters",
        "_window",
        "ceiling",
        "decreases",
        "in_flight",
        "limit",
        "rate_limited",
    )

    def __init__(self, ceiling: int, *, start: int | None = None) -> None:
        self.ceiling = max(1, ceiling)
        self.limit = max(1, min(self.ceiling, start or self.ceiling))
        self.in_flight = 0
        self.rate_limited = 0
        self.decreases = 0
        self._credit = 0
        self._recover_to = self.limit
        self._failed_probes = 0
        self._failed_at = 0
        self._window = 0
        self._paused_until = 0.0
        self._timer: asyncio.TimerHandle | None = None
        self._waiters: deque[asyncio.Future[None]] = deque()

    @property
    def paused(self) -> bool:
        """True while a ``Retry-After`` pause holds back new requests."""
        return self._timer is not None

    async def acquire(self) -> int:
        """Wait for a slot; returns the window the request is sent in (pass it to `release_rate_limited`)."""
        if self.in_flight < self.limit and self._timer is None and not self._waiters:
            self.in_flight += 1
            return self._window
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(fut)
        try:
            await fut
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled():
                self.release()  # the slot was handed over just as the caller was cancelled
            raise
        return self._window

    def release(self) -> None:
        """Give a slot back without a verdict (an error other than a rate limit, a cancellation)."""
        self.in_flight -= 1
        if self._waiters:
            self._wake()

    def release_ok(self) -> None:
        """Give a slot back after a success: regrow quickly to the last level that held, then probe."""
        self.in_flight -= 1
        if self.limit < self.ceiling:
            self._grow()
        if self._waiters:
            self._wake()

    def release_rate_limited(self, window: int, retry_after: float | None) -> None:
        """Give a slot back after a 429: halve once per window, pause the key for ``retry_after`` seconds."""
        self.in_flight -= 1
        self.rate_limited += 1
        if window == self._window:
            halved = max(1, self.limit // 2)
            # A failed probe above the last level that held, or a burst that shows the provider held more
            # than half: either way the provider's level is known, so probe past it slowly.
            if self.limit > self._recover_to or self.in_flight > halved:
                self._failed_probes += 1
                self._failed_at = self.limit
            self.limit = halved
            self._window += 1
            self._credit = 0
            self.decreases += 1
            self._recover_to = self.in_flight
        else:
            # A 429 of the same burst: the provider still held at least what is left in flight.
            self._recover_to = min(self._recover_to, self.in_flight)
        if retry_after:
            self._pause(retry_after)
        if self._waiters:
            self._wake()

    def _grow(self) -> None:
        if self.limit < self._recover_to:
            self.limit += 1  # slow start back to a level the provider held
            return
        self._credit += 1  # successes since the last change; an int, so no float drift
        if self._credit >= self.limit * 8 ** min(2, self._failed_probes):
            self._credit = 0
            self._recover_to = self.limit  # it held for a whole probing period
            if self.limit >= self._failed_at:
                self._failed_probes = 0  # the level that failed last holds now: the provider grew
            self.limit += 1

    def _pause(self, seconds: float) -> None:
        loop = asyncio.get_running_loop()
        until = loop.time() + seconds
        if until <= self._paused_until and self._timer is not None:
            return
        if self._timer is not None:
            self._timer.cancel()
        self._paused_until = until
        self._timer = loop.call_at(until, self._resume)

    def _resume(self) -> None:
        self._timer = None
        self._wake()

    def _wake(self) -> None:
        """Hand free slots to waiters in FIFO order; cancelled waiters are skipped."""
        waiters = self._waiters
        while waiters and self.in_flight < self.limit and self._timer is None:
            fut = waiters.popleft()
            if not fut.done():
                self.in_flight += 1
                fut.set_result(None)


LimiterKey = tuple[str, str, str | None]


class LimiterPool:
    """One `AdaptiveLimiter` per key, created on first use with the route's ceiling.

    Args:
        make: builds the limiter of a key (default: a plain `AdaptiveLimiter`; `datamill.llm.budget` makes
            ones that share a budget with other processes).
    """

    __slots__ = ("_limiters", "_make")

    def __init__(self, make: Callable[[LimiterKey, int], AdaptiveLimiter] | None = None) -> None:
        self._limiters: dict[LimiterKey, AdaptiveLimiter] = {}
        self._make = make

    def get(self, key: LimiterKey, ceiling: int) -> AdaptiveLimiter:
        limiter = self._limiters.get(key)
        if limiter is None:
            made = self._make(key, ceiling) if self._make is not None else AdaptiveLimiter(ceiling)
            limiter = self._limiters[key] = made
        return limiter

    def items(self) -> list[tuple[LimiterKey, AdaptiveLimiter]]:
        return list(self._limiters.items())
